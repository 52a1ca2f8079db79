// The page's words in Indonesian (the default) and English. Every string a
// visitor reads is here; data from the log is never looked up or formatted here.

const WORDS = {
  id: {
    title: "Saksi: hasil pemilu yang terbukti",
    skip: "Lewati ke isi",
    language: "English",
    languageLabel: "Ganti bahasa ke English",
    ballot: "Surat suara",
    ballots: {
      ppwp: "Presiden dan Wakil Presiden",
      pdpr: "DPR",
      pdpd: "DPD",
      pdprdp: "DPRD Provinsi",
      pdprdk: "DPRD Kabupaten/Kota",
    },
    levels: {
      national: "Nasional",
      province: "Provinsi",
      regency: "Kabupaten/Kota",
      district: "Kecamatan",
      village: "Desa/Kelurahan",
      station: "TPS",
    },
    breadcrumb: "Lokasi",
    checking: "Memeriksa bukti di peramban Anda…",
    verified: "TERVERIFIKASI",
    verifiedDetail:
      "Peramban Anda memeriksa sendiri: tanda tangan log, {cosigned} dari {witnesses} saksi independen, " +
      "konsistensi dengan checkpoint yang pernah dilihat peramban ini, dan bukti inklusi setiap catatan di halaman ini.",
    verifiedDetailNoWitness:
      "Peramban Anda memeriksa sendiri: tanda tangan log, konsistensi dengan checkpoint yang pernah dilihat " +
      "peramban ini, dan bukti inklusi setiap catatan di halaman ini. Tidak ada saksi independen yang dipatok " +
      "untuk log ini: tanpa mereka, peramban lain bisa saja diperlihatkan log yang berbeda.",
    failed: "GAGAL DIVERIFIKASI",
    failedDetail: "Jangan percayai angka di halaman ini. Unduh bukti dan bagikan kepada pemantau.",
    evidence: "Unduh bukti",
    unsupported: "Peramban ini tidak dapat memeriksa tanda tangan Ed25519. Gunakan peramban terbaru.",
    checkpoint: "Checkpoint: {size} catatan, ditandatangani {signer}",
    totals: "Perolehan suara",
    candidate: "Peserta",
    votes: "Suara",
    share: "Persentase",
    valid: "Suara sah",
    invalid: "Suara tidak sah",
    total: "Jumlah suara",
    completeness: "Kelengkapan",
    listed: "Terdaftar",
    present: "Masuk",
    missing: "Belum masuk",
    flagged: "Ditandai",
    stale: "Rekap usang: ada perubahan di bawahnya sejak rekap ditandatangani",
    noRecap: "Belum ada rekap untuk wilayah ini.",
    children: "Wilayah di bawahnya",
    code: "Kode",
    name: "Nama",
    status: "Status",
    proof: "Bukti",
    statusPresent: "masuk",
    statusMissing: "belum masuk",
    proofOk: "terbukti",
    proofPending: "memeriksa",
    proofFailed: "GAGAL",
    provenance: "Asal-usul angka",
    record: "Catatan",
    revision: "Revisi",
    stage: "Tahap",
    stages: {
      machine_reading: "pembacaan mesin",
      officer_confirmation: "konfirmasi petugas",
      authority_correction: "koreksi berwenang",
      recount: "penghitungan ulang",
    },
    signedBy: "Ditandatangani oleh",
    role: "peran",
    scope: "cakupan",
    keyId: "ID kunci",
    unknownKey: "kunci tidak ditemukan di registri",
    revoked: "(kunci ini kemudian dicabut)",
    loggedAt: "Dicatat",
    reason: "Alasan",
    reference: "Rujukan",
    earlier: "Revisi sebelumnya",
    formPages: "Halaman foto formulir (SHA-256)",
    checkPhoto: "Periksa file foto yang Anda miliki",
    noHash: "hash foto tidak dicatat",
    photoMatches: "Cocok dengan halaman {page} formulir ini.",
    photoDiffers: "TIDAK cocok dengan halaman mana pun formulir ini. SHA-256 file: {hash}",
    flags: "Tanda aritmetika",
    arithmetic: "Pemeriksaan aritmetika",
    arithmeticNote:
      "Dihitung di peramban Anda dari angka formulir yang ditandatangani, dengan aturan yang sama seperti " +
      "pemverifikasi para pemantau. Tanda bukan penolakan: formulir dicatat apa adanya.",
    arithmeticPass: "Semua pemeriksaan aritmetika lolos.",
    arithmeticUnreadable: "Angka formulir ini tidak dapat dibaca untuk diperiksa.",
    flagsNote:
      "Tanda sebuah TPS dihitung ulang di peramban Anda dari formulirnya yang ditandatangani; tanda sebuah " +
      "rekap (jumlahnya dibanding jumlah wilayah di bawahnya) adalah hitungan server.",
    checks: {
      "votes-sum": "jumlah suara calon ≠ suara sah",
      "valid-invalid-total": "sah + tidak sah ≠ jumlah suara",
      "total-voters": "jumlah suara ≠ pengguna hak pilih",
      "voter-lists": "DPT + DPTb + DPK ≠ pengguna hak pilih",
      "male-female": "laki-laki + perempuan ≠ jumlah",
      "registered-over-limit": "pemilih terdaftar melebihi batas TPS",
      "dpt-voters-over-registered": "pemilih DPT melebihi yang terdaftar",
      "voters-over-registered": "pemilih melebihi yang terdaftar",
      "ballot-papers": "surat suara tidak cocok",
      "recap-sum": "rekap ≠ jumlah wilayah di bawahnya",
    },
    corrections: "Koreksi terbaru",
    correctionsOf: "Koreksi di {region}",
    before: "Sebelum",
    after: "Sesudah",
    where: "Bagian",
    noCorrections: "Tidak ada koreksi.",
    older: "Koreksi yang lebih lama",
    noChange: "Angka perolehan suara tidak berubah.",
    showCorrections: "Lihat koreksi di wilayah ini",
    completenessNote:
      "Setiap catatan yang masuk dibuktikan di atas. Jumlah yang terdaftar dan yang belum masuk dihitung server " +
      "dari registri wilayah: halaman ini tidak dapat membuktikan bahwa sebuah catatan tidak ada.",
    limits:
      "Yang tidak dapat dibuktikan halaman ini: bahwa server menampilkan revisi terbaru dan tidak " +
      "menyembunyikan catatan apa pun. Itu dibuktikan oleh audit penuh para pemantau " +
      "(saksi-verify audit) atas seluruh log.",
    pinned: "Kunci log yang dipatok: {key}. Bandingkan dengan pengumuman KPU.",
    loading: "Memuat…",
    notShown: "Angka tidak ditampilkan: checkpoint log tidak terbukti.",
    notFound: "Tidak ditemukan.",
    readError: "Tidak dapat membaca dari server: {detail}",
    failure: {
      signature: "Checkpoint tidak ditandatangani dengan benar oleh kunci log yang dipatok.",
      quorum: "Checkpoint tidak membawa tanda tangan saksi sebanyak yang disyaratkan kebijakan.",
      rollback: "Server menampilkan checkpoint yang LEBIH LAMA dari yang pernah dilihat peramban ini.",
      fork: "Server menampilkan checkpoint yang TIDAK KONSISTEN dengan yang pernah dilihat peramban ini (fork).",
      keyChanged: "Kunci log berubah sejak kunjungan terakhir Anda.",
      inclusion: "Sebuah catatan tidak terbukti ada di log yang ditandatangani.",
      mismatch: "Angka yang ditampilkan server berbeda dari catatan yang ditandatangani.",
      malformed: "Server mengirim data yang rusak.",
      recordSignature:
        "Sebuah catatan di log yang ditandatangani tidak ditandatangani dengan benar oleh kunci yang diberi " +
        "wewenang: log menerima catatan palsu.",
      unavailable: "Server tidak mengirim bukti untuk sebuah catatan di halaman ini.",
    },
  },
  en: {
    title: "Saksi: election results, proven",
    skip: "Skip to content",
    language: "Bahasa Indonesia",
    languageLabel: "Switch language to Bahasa Indonesia",
    ballot: "Ballot",
    ballots: {
      ppwp: "President and Vice President",
      pdpr: "House of Representatives (DPR)",
      pdpd: "Regional Representatives (DPD)",
      pdprdp: "Provincial council (DPRD)",
      pdprdk: "Regency/city council (DPRD)",
    },
    levels: {
      national: "National",
      province: "Province",
      regency: "Regency/city",
      district: "District",
      village: "Village",
      station: "Polling station",
    },
    breadcrumb: "Location",
    checking: "Checking the proofs in your browser…",
    verified: "VERIFIED",
    verifiedDetail:
      "Your browser checked for itself: the log's signature, {cosigned} of {witnesses} independent witnesses, " +
      "consistency with the checkpoint this browser saw before, and every record on this page's inclusion proof.",
    verifiedDetailNoWitness:
      "Your browser checked for itself: the log's signature, consistency with the checkpoint this browser saw " +
      "before, and every record on this page's inclusion proof. No independent witness is pinned for this log: " +
      "without them, other browsers could be shown a different log.",
    failed: "VERIFICATION FAILED",
    failedDetail: "Do not trust the numbers on this page. Download the evidence and share it with observers.",
    evidence: "Download the evidence",
    unsupported: "This browser cannot check Ed25519 signatures. Use a current browser.",
    checkpoint: "Checkpoint: {size} records, signed by {signer}",
    totals: "Votes",
    candidate: "Candidate",
    votes: "Votes",
    share: "Share",
    valid: "Valid votes",
    invalid: "Invalid votes",
    total: "Total votes",
    completeness: "Completeness",
    listed: "Listed",
    present: "In",
    missing: "Missing",
    flagged: "Flagged",
    stale: "Stale recap: something below it changed since it was signed",
    noRecap: "No recap for this region yet.",
    children: "Regions below",
    code: "Code",
    name: "Name",
    status: "Status",
    proof: "Proof",
    statusPresent: "in",
    statusMissing: "missing",
    proofOk: "proven",
    proofPending: "checking",
    proofFailed: "FAILED",
    provenance: "Where the numbers come from",
    record: "Record",
    revision: "Revision",
    stage: "Stage",
    stages: {
      machine_reading: "machine reading",
      officer_confirmation: "officer confirmation",
      authority_correction: "authority correction",
      recount: "recount",
    },
    signedBy: "Signed by",
    role: "role",
    scope: "scope",
    keyId: "key ID",
    unknownKey: "key not found in the registry",
    revoked: "(this key was revoked later)",
    loggedAt: "Logged",
    reason: "Reason",
    reference: "Reference",
    earlier: "Earlier revisions",
    formPages: "Form photo pages (SHA-256)",
    checkPhoto: "Check a photo file you have",
    noHash: "no photo hash recorded",
    photoMatches: "Matches page {page} of this form.",
    photoDiffers: "Does NOT match any page of this form. The file's SHA-256: {hash}",
    flags: "Arithmetic flags",
    arithmetic: "Arithmetic checks",
    arithmeticNote:
      "Computed in your browser from the signed form's numbers, by the same rules as the observers' " +
      "verifier. A flag is not a refusal: the form is logged as written.",
    arithmeticPass: "Every arithmetic check passes.",
    arithmeticUnreadable: "This form's numbers cannot be read to check them.",
    flagsNote:
      "A polling station's flags are recomputed in your browser from its signed form; a recap's flags (its " +
      "totals against those of the regions below it) are the server's.",
    checks: {
      "votes-sum": "candidate votes ≠ valid votes",
      "valid-invalid-total": "valid + invalid ≠ total votes",
      "total-voters": "total votes ≠ voters",
      "voter-lists": "DPT + DPTb + DPK ≠ voters",
      "male-female": "male + female ≠ total",
      "registered-over-limit": "more registered than a station may have",
      "dpt-voters-over-registered": "more DPT voters than registered",
      "voters-over-registered": "more voters than registered",
      "ballot-papers": "ballot papers do not add up",
      "recap-sum": "recap ≠ sum of the regions below",
    },
    corrections: "Latest corrections",
    correctionsOf: "Corrections in {region}",
    before: "Before",
    after: "After",
    where: "Field",
    noCorrections: "No corrections.",
    older: "Older corrections",
    noChange: "The vote counts did not change.",
    showCorrections: "See the corrections in this region",
    completenessNote:
      "Every record that is in is proven here. The listed and missing counts are the server's, from the region " +
      "registry: this page cannot prove that a record is absent.",
    limits:
      "What this page cannot prove: that the server showed the latest revision and hid no record. " +
      "The observers' full audit of the whole log (saksi-verify audit) proves that.",
    pinned: "Pinned log key: {key}. Compare it with the commission's announcement.",
    loading: "Loading…",
    notShown: "No numbers are shown: the log's checkpoint is not proven.",
    notFound: "Not found.",
    readError: "Cannot read from the server: {detail}",
    failure: {
      signature: "The checkpoint is not correctly signed by the pinned log key.",
      quorum: "The checkpoint does not carry as many witness cosignatures as the policy requires.",
      rollback: "The server shows an OLDER checkpoint than one this browser has seen.",
      fork: "The server shows a checkpoint INCONSISTENT with one this browser has seen (a fork).",
      keyChanged: "The log's key changed since your last visit.",
      inclusion: "A record is not proven to be in the signed log.",
      mismatch: "The numbers the server shows differ from the signed record.",
      malformed: "The server sent malformed data.",
      recordSignature:
        "A record in the signed log is not correctly signed by the key it was granted to: the log admitted " +
        "a forged record.",
      unavailable: "The server did not send the proof of a record on this page.",
    },
  },
};

let current = "id";

export function setLanguage(lang) {
  current = WORDS[lang] ? lang : "id";
  document.documentElement.lang = current;
  return current;
}

export function language() {
  return current;
}

/** The phrase at ``path`` ("a.b"), with {name} filled from ``params``. */
export function t(path, params = {}) {
  let value = path.split(".").reduce((node, key) => (node == null ? undefined : node[key]), WORDS[current]);
  if (typeof value !== "string") value = path;
  return value.replace(/\{(\w+)\}/g, (_, name) => String(params[name] ?? ""));
}

/** A number as the page's language writes it. */
export function number(value) {
  return new Intl.NumberFormat(current === "id" ? "id-ID" : "en-GB").format(value);
}

export function percent(part, whole) {
  if (!whole) return "–";
  return new Intl.NumberFormat(current === "id" ? "id-ID" : "en-GB", {
    style: "percent",
    minimumFractionDigits: 2,
    maximumFractionDigits: 2,
  }).format(part / whole);
}
