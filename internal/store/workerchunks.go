package store

// WorkerChunks produces a new job's workers in order, one chunk at a time:
// it calls emit once per chunk and returns emit's first error, or its own.
// JobCreate and JobReplace call it inside their transaction, so a job's
// workers are written all or none, and a job of any size is held in memory
// one chunk at a time (rollout.Define reads and plans each chunk only when
// the store asks for it). A nil WorkerChunks has no workers. An error it
// returns comes back from JobCreate or JobReplace unchanged.
type WorkerChunks func(emit func([]Worker) error) error

// WorkersOf is the WorkerChunks of workers already in memory, as one chunk.
func WorkersOf(workers []Worker) WorkerChunks {
	return func(emit func([]Worker) error) error {
		if len(workers) == 0 {
			return nil
		}
		return emit(workers)
	}
}
