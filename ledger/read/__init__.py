"""Read side: proofs and tiles from stored data, never taking the writer's lock."""
