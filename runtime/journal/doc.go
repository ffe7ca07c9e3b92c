// Package journal is a cell gateway's durable journal of flow executions
// (DESIGN §6, durable executions): a Store implements flow.Journal on one
// bbolt file, and reads executions back for the engine's recovery at
// gateway start (Unfinished) and for the executions API and the CLI (Get,
// List).
//
// # Group commit
//
// Begin, Intent, Step, Compensation and End check and encode their record
// in the caller's goroutine, queue it and return a Commit at once. One
// writer goroutine commits the queue: it takes every record queued while
// its previous commit ran (up to 1000 records or 4 MiB), applies them in
// queue order in one read-write transaction, whose commit syncs the file
// (bbolt syncs twice: the pages, then the meta page that points to them),
// and then resolves the Commits of all of them: Wait returns the
// transaction's error. Records are therefore durable in queue order, and a crash loses
// a suffix of the queue, never a record in the middle. The records of one
// batch share one Commit, so a Commit nobody waits on costs nothing but
// its record. After a failed commit every later record fails with the
// same error, since committing it without the lost ones would break that
// rule; the gateway reopens the journal to go on. Queued records are
// bounded (64 MiB): past it, recording waits for the writer.
//
// Records are checked in queue order: a Begin of an id the journal holds,
// or any other record of an execution that did not begin or already
// ended, fails at once without being queued.
//
// # Reading
//
// Unfinished, Get and List read in one bbolt read transaction each,
// beside the writer, and see what is durable: a record whose Commit has
// not resolved may be missing. Get's Execution and List's Summary are
// what GET /_orchestro/executions/<id> and the CLI show, shaped for JSON;
// the input and the steps' bodies are in Execution for the gateway and
// the CLI, and left out of its JSON.
//
// # Layout
//
// Values are JSON, so that bbolt's own tools (bbolt get, bbolt keys)
// show them as they are. A time in a key is Unix nanoseconds in 8
// big-endian bytes with the sign bit flipped, so keys sort by time.
//
//	meta        "version" → "1", the layout version.
//	records     time id NUL seq kind → the record, where time is the
//	            execution's start, seq the record's number in its
//	            execution (4 bytes, big-endian) and kind one letter (B
//	            begin, I intent, S step, C compensation, E end). One
//	            execution's records are contiguous and in the order they
//	            were queued; executions follow one another by start time.
//	            Values are flow.BeginRecord, {"step": id}, flow.StepRecord,
//	            flow.CompensationResult and flow.EndRecord.
//	ids         id → time: where an execution's records are.
//	unfinished  id → {"flow", "started"}: the executions with a Begin and
//	            no End, which recovery reads and retention skips.
//	started     time id → Summary: every execution by start time, with
//	            what List shows, kept current at Begin, at the first
//	            compensation and at End.
//	flows       flow NUL time id → empty: every execution by flow and start
//	            time, for List by flow and for retention.
//
// Start time first, rather than id first, matters for size and speed:
// ids are random, so id-first keys are put all over the bucket, each into
// a page of its own that splits in halves; time-first keys are put near
// the end, into the few pages the batch already dirtied, which split 90%
// full (FillPercent). For 20,000 executions of 10 KB, the file is 254 MiB
// rather than 352, and a commit of the benchmark writes 43 pages rather
// than 51.
//
// Ids and flow names cannot hold a NUL byte and are at most 512 bytes.
//
// # Retention and size
//
// When an execution ends, the oldest finished executions of its flow
// beyond Options.Retain (by start time) are dropped in the same
// transaction, with their records and index entries. The Store keeps the
// number of finished executions of each flow in memory (counted at Open),
// so an End within Retain reads nothing more; one past it walks the flow's
// index from its oldest entry, passing only unfinished executions.
// Unfinished executions are always kept. A flow that is no longer in the
// spec keeps its last Retain executions until the file is removed.
//
// The live data is therefore at most (Retain × flows + unfinished
// executions) × the size of one execution's records. Those hold its input
// (its body at most the flow's max_body), each step's answer (its body at
// most max_body, as the engine reads it) and the execution's answer, with
// bodies in base64 (4/3), headers, and about 150 bytes a record. An
// execution of 4 steps whose bodies are 1 KiB takes about 10 KB; with
// Retain 1000, that is 10 MB of records a flow, and a file of about
// 13 MB a flow (pages are about 75% full): 254 MiB for 20 flows.
//
// bbolt reuses freed pages but never shrinks its file, so a file keeps
// the size of its peak live data: a burst of unfinished executions, large
// bodies, or a Retain since lowered. Open therefore compacts a file over
// 64 MiB and over twice its live data: it copies the live data into
// path + ".compact" with bbolt's Compact, syncs it, renames it over the
// journal and syncs the directory. The old file stays valid until the
// rename, which is atomic, so a crash leaves one whole journal (and
// perhaps a leftover copy, removed at the next Open). Below 64 MiB a copy
// at every start is not worth the disk it gives back; under twice its
// live data, the free pages are what the next burst reuses anyway.
//
// # Errors at Open
//
// A file that is not a bbolt file, or is corrupt (truncated, pages
// unreachable or referenced twice, keys out of order, an unfinished
// execution without its records), or is locked by another process for
// over a second, makes Open fail with an error naming the file. Open reads
// the whole file for this, in order first (0.5 s for a cold 250 MB file
// on a virtual disk), and turns bbolt's panics and memory faults on a
// corrupt file into that error. It never deletes, truncates or
// rewrites a file it refused: the gateway reports the error and runs
// without a journal, and the file is there to inspect.
package journal
