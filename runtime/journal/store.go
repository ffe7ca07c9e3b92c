package journal

import (
	"errors"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/orchestro/orchestro/runtime/flow"
)

// Errors a caller branches on.
var (
	// ErrNotFound: the journal holds no execution of that id (it never
	// began, or retention dropped it).
	ErrNotFound = errors.New("execution not found")
	// ErrClosed: the Store is closed.
	ErrClosed = errors.New("journal closed")
)

// DefaultRetain is how many finished executions of a flow a Store keeps
// when Options.Retain is not set.
const DefaultRetain = 1000

// Options tune a Store. The zero value is ready to use.
type Options struct {
	// Retain is how many finished executions of each flow are kept, the
	// most recently started ones; DefaultRetain when 0 or less.
	// Unfinished executions are always kept.
	Retain int
	// Now is the clock, for records that carry no time; time.Now when nil.
	Now func() time.Time
	// OnCommit, when set, is called after each successful group commit
	// with its number of records and the time from the start of its
	// transaction to the end of its fsync. It runs on the writer
	// goroutine, after the batch's Commits are resolved: it must be quick.
	OnCommit func(batch int, d time.Duration)
	// Logf, when set, receives what the Store does on its own: a
	// compaction at Open, a failed commit.
	Logf func(format string, args ...any)

	// compactAbove overrides defaultCompactAbove in tests.
	compactAbove int64
}

// Bounds of the write path.
const (
	// maxBatchRecords and maxBatchBytes bound one group commit, so that a
	// burst does not make one transaction's dirty pages, and the waits of
	// its first records, grow without limit.
	maxBatchRecords = 1000
	maxBatchBytes   = 4 << 20
	// maxQueuedBytes bounds the records queued and not yet committed: past
	// it, Begin, Intent, Step, Compensation and End wait for room. The
	// engine waits on some Commits of every execution, which bounds the
	// queue already; this bounds it when a disk is slower than the
	// executions that do not wait.
	maxQueuedBytes = 64 << 20
	// lockTimeout is how long Open waits for another process to release
	// the file.
	lockTimeout = time.Second
)

// Store is a cell gateway's journal of flow executions in one bbolt file.
// It implements flow.Journal, and reads executions back for recovery
// (Unfinished) and for the executions API and the CLI (Get, List). Its
// methods are safe for concurrent use.
type Store struct {
	path string
	db   *bolt.DB
	opts Options

	mu sync.Mutex
	// work wakes the writer when a batch is queued or the Store closes;
	// room wakes writers of records waiting for the queue to shrink.
	work, room sync.Cond
	// queue holds the batches not yet taken by the writer, oldest first;
	// records join the last one until it is full.
	queue []*batch
	// queued is the size of the records in queue and in the batch being
	// committed.
	queued int
	// live holds the executions that began and whose End is not durable
	// yet, so that records are checked and numbered in queue order.
	live    map[string]*liveExec
	closing bool
	// failed is set by the first failed commit: every later record fails
	// with it, since committing a later record without an earlier one
	// would break the rule that a crash loses only a suffix.
	failed error

	// writerDone is closed when the writer goroutine returns.
	writerDone chan struct{}
	closeOnce  sync.Once
	closeErr   error

	// finished counts the finished executions of each flow held in the
	// file. Only the writer goroutine uses it once Open returns.
	finished map[string]int
}

var _ flow.Journal = (*Store)(nil)

// liveExec is an execution that began and whose End is not durable.
type liveExec struct {
	// Set at Begin, read-only afterwards.
	id      string
	flow    string
	started time.Time
	async   bool
	skey    []byte // key in bucketStarted

	// seq is the number of the next record and ended is set when End is
	// queued; both under Store.mu.
	seq   uint32
	ended bool

	// compensating is set when the first compensation is applied; only the
	// writer goroutine uses it.
	compensating bool
}

// summary is the index entry of a live execution.
func (e *liveExec) summary() *Summary {
	return &Summary{ID: e.id, Flow: e.flow, State: stateOf(false, "", e.compensating), Started: e.started, Async: e.async}
}

// Close commits the records already queued, stops the writer and closes
// the file. Records queued after Close begins fail with ErrClosed, as do
// reads after it ends. Close is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closing = true
		s.work.Signal()
		s.room.Broadcast()
		s.mu.Unlock()
		<-s.writerDone
		if err := s.db.Close(); err != nil {
			s.closeErr = fmt.Errorf("close journal %s: %w", s.path, err)
		}
	})
	return s.closeErr
}

// Path is the file the Store keeps.
func (s *Store) Path() string { return s.path }

func (s *Store) logf(format string, args ...any) {
	if s.opts.Logf != nil {
		s.opts.Logf(format, args...)
	}
}
