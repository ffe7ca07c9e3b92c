// Package journal is a cell gateway's durable journal of flow executions
// (DESIGN §6, durable executions): a Store implements flow.Journal as an
// append-only log of segment files in one directory, with its index in
// memory, and reads executions back for the engine's recovery at gateway
// start (Unfinished) and for the executions API and the CLI (Get, List).
//
// # Why a log
//
// A busy flow journals several records per execution and waits for some of
// them, so what a commit costs is what the journal costs. Here a commit is
// one write at the end of a file and one fdatasync. An embedded B+tree
// (bbolt, which this package used first) writes every page a transaction
// touched and syncs twice, pages then meta page; on the benchmark flow it
// cost 40% of the executions per second, against 13% for the log (see
// orchestro-bench -targets flow,flow-journal). The index an execution
// list or a recovery needs is small, and rebuilt by reading the log at
// Open.
//
// # Group commit
//
// Begin, Intent, Step, Compensation and End check and encode their record
// in the caller's goroutine, frame it into the batch being queued and
// return a Commit at once. One writer goroutine commits the queue: it
// takes every record queued while its previous commit ran (up to 1000
// records or 4 MiB), writes them with one WriteAt at the end of the
// active segment and one fdatasync, indexes them, and then resolves the
// Commits of all of them: Wait returns the commit's error. It commits
// when someone waits for a queued record, when a batch is full, or 5 ms
// (lazyCommit) after the first record of an idle queue: the engine waits
// for two records of most executions, and committing the others as they
// come would cost an idle gateway an fdatasync each (4.4 commits an
// execution of the benchmark flow at one connection, against 2). Sync
// commits what is queued, for readers that must see it. Records are
// therefore durable in queue order, and a crash loses a suffix of the
// queue, never a record in the middle. The records of one batch share one
// Commit, so a Commit nobody waits on costs nothing but its record. After
// a failed commit every later record fails with the same error, since
// committing it without the lost ones would break that rule; the gateway
// reopens the journal to go on. Queued records are bounded (64 MiB): past
// it, recording waits for the writer.
//
// Records are checked in queue order: a Begin of an id the journal holds,
// or any other record of an execution that did not begin or already
// ended, fails at once without being queued.
//
// # Segments and frames
//
// The directory holds segment files executions-<n>.log, n in 10 decimal
// digits, and LOCK, which an open Store holds with flock(2) so that two
// gateways never write one journal. A segment starts with the magic
// "orchestro journal 1\n" and is written over zeros: it is created at its
// full size (16 MiB), so that a commit's fdatasync writes data blocks
// only, not the file's size and block map (40% less CPU time and wait
// than appending, measured on ext4). The next segment is prepared
// under the name executions-<n>.log.spare once the active one is half
// full, and renamed when the active one is full.
//
// Each record is one frame: its payload's length and CRC-32C (Castagnoli),
// 4 bytes each, little-endian, then the payload: the record's kind (B
// begin, I intent, S step, C compensation, E end), its number in its
// execution (4 bytes, little-endian), the execution id, and the record
// (see codec.go: varints, length-prefixed strings and bytes). A zero
// length ends a segment's frames: the rest is zeros.
//
// # The index
//
// The Store keeps in memory, for every execution it holds, what List
// shows (a Summary) and where each of its records is; and, per flow, its
// finished executions by start time. Readers see only what is durable:
// the writer indexes a batch after its fdatasync, so a record nobody
// waited for shows within lazyCommit, or at once after Sync. Get and
// Unfinished read the records with one pread each. The index costs about
// 500 bytes an execution: 25 MB for 50,000.
//
// Open rebuilds it by reading every segment in order, a whole file at a
// time.
// A frame that is cut short or fails its CRC in the last segment is a
// write the process did not finish (a crash): it and the rest of the
// segment are zeroed, which Logf reports, and nothing else is lost, since
// every record before it was durable in order. Anywhere else it is damage:
// Open fails, naming the file and the byte. So does a file that does not
// start with the magic, or an execution with a record missing between
// two it has; Open never removes or rewrites a file it refused, and the
// gateway runs without a journal rather than on a damaged one.
//
// # Retention, size and compaction
//
// When an execution ends, the oldest finished executions of its flow
// beyond Options.Retain (by start time) are dropped from the index; their
// frames become dead space. Unfinished executions are always kept. A flow
// that is no longer in the spec keeps its last Retain executions. Open
// applies Retain as well, so a Retain lowered takes effect at once.
//
// After each commit, the writer deletes the oldest segment while it holds
// no frame of an execution kept. Most of the log goes that way: retention
// drops the oldest executions first. An old execution that stays
// unfinished, or a flow that runs rarely, pins its segment; so when the
// log is over 64 MiB and over twice the size of the frames kept, the
// writer copies every execution that has a frame in the oldest segment,
// all of its frames, to the end of the log (one write, one fdatasync),
// points the index at the copies, and deletes the oldest segment. The log
// is therefore bounded by about twice what it keeps, plus a segment, and
// what it keeps by (Retain × flows + unfinished executions) × the size of
// one execution's records: its input and each answer, each at most the
// flow's max_body, and about 60 bytes a record.
//
// Segments are only ever deleted oldest first, and a copy takes all of an
// execution's frames. Together they make an execution that retention
// dropped never come back unfinished after a restart: while the segment
// holding its Begin (or its latest copy) exists, so does every later
// segment, with all of its later records, its End included; once that
// segment is gone, what remains of it has no Begin, and Open ignores
// records without one. A copy replaces the original found earlier.
//
// Ids and flow names cannot hold a NUL byte and are at most 512 bytes.
package journal
