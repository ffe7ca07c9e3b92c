package journal

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/orchestro/orchestro/runtime/flow"
)

// TestGroupCommitBatches holds the writer after a first commit, queues
// records from many goroutines meanwhile, and checks that they are
// committed together, in batches of at most maxBatchRecords.
func TestGroupCommitBatches(t *testing.T) {
	var (
		mu      sync.Mutex
		batches []int
		release = make(chan struct{})
	)
	s := open(t, tempPath(t), Options{OnCommit: func(n int, _ time.Duration) {
		mu.Lock()
		batches = append(batches, n)
		first := len(batches) == 1
		mu.Unlock()
		if first {
			<-release
		}
	}})
	wait(t, s.Begin(beginRec("first", "f", t0)))

	const workers, each = 50, 50 // 2500 records
	commits := make(chan flow.Commit, workers*each)
	var queued sync.WaitGroup
	for w := range workers {
		queued.Go(func() {
			for i := range each {
				commits <- s.Begin(beginRec(fmt.Sprintf("w%d-%d", w, i), "f", t0))
			}
		})
	}
	queued.Wait()
	close(release)
	close(commits)
	for c := range commits {
		wait(t, c)
	}
	// OnCommit runs after the batch's Commits are resolved: the last call
	// may still be on its way.
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(time.Millisecond) {
		mu.Lock()
		n := len(batches)
		mu.Unlock()
		if n >= 4 {
			break
		}
	}

	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff([]int{1, 1000, 1000, 500}, batches); diff != "" {
		t.Errorf("batch sizes (-want +got):\n%s", diff)
	}
}

// TestGroupCommitConcurrentWaits has many executions wait on each record
// at once, and checks that commits are far fewer than records.
func TestGroupCommitConcurrentWaits(t *testing.T) {
	var commits, records atomic.Int64
	s := open(t, tempPath(t), Options{OnCommit: func(n int, _ time.Duration) {
		commits.Add(1)
		records.Add(int64(n))
	}})
	var wg sync.WaitGroup
	for w := range 64 {
		wg.Go(func() {
			for i := range 20 {
				id := fmt.Sprintf("w%d-%d", w, i)
				if err := s.Begin(beginRec(id, "f", t0)).Wait(); err != nil {
					t.Error(err)
					return
				}
				if err := s.End(id, endRec(flow.Succeeded, t0)).Wait(); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	// OnCommit runs after the batch's Commits are resolved: the last
	// batch's call may still be on its way when the last Wait returns.
	for end := time.Now().Add(5 * time.Second); records.Load() < 64*20*2 && time.Now().Before(end); {
		time.Sleep(time.Millisecond)
	}
	if records.Load() != 64*20*2 {
		t.Fatalf("%d records committed, want %d", records.Load(), 64*20*2)
	}
	// Every record waited on, by 64 goroutines: each commit takes what the
	// others queued meanwhile.
	if c := commits.Load(); c > records.Load()/4 {
		t.Errorf("%d commits for %d records: not grouped", c, records.Load())
	}
	t.Logf("%d commits for %d records", commits.Load(), records.Load())
}

// TestCloseCommitsQueued queues records without waiting on them and
// closes: every one of them is durable, and writes after Close fail.
func TestCloseCommitsQueued(t *testing.T) {
	path := tempPath(t)
	s := open(t, path, Options{})
	var commits []flow.Commit
	for i := range 3000 {
		id := fmt.Sprintf("e%04d", i/3)
		switch i % 3 {
		case 0:
			commits = append(commits, s.Begin(beginRec(id, "f", t0.Add(time.Duration(i)))))
		case 1:
			commits = append(commits, s.Intent(id, "s"))
		case 2:
			commits = append(commits, s.End(id, endRec(flow.Succeeded, t0)))
		}
	}
	// Writes racing with Close: each either is durable or fails with
	// ErrClosed, and none hangs.
	var racing sync.WaitGroup
	late := make([]flow.Commit, 100)
	racing.Go(func() {
		for i := range late {
			late[i] = s.Begin(beginRec(fmt.Sprintf("late%d", i), "f", t0))
		}
	})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	racing.Wait()
	for i, c := range commits {
		if err := c.Wait(); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	var durableLate int
	for _, c := range late {
		switch err := c.Wait(); {
		case err == nil:
			durableLate++
		case !strings.Contains(err.Error(), ErrClosed.Error()):
			t.Errorf("write racing with Close: %v", err)
		}
	}

	s = open(t, path, Options{})
	list, err := s.List(Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1000+durableLate {
		t.Errorf("%d executions after reopen, want %d", len(list), 1000+durableLate)
	}
}

// TestFailedCommitIsSticky breaks the file under the writer: the batch
// fails, and so does every later record, so that what is durable stays a
// prefix of what was queued.
func TestFailedCommitIsSticky(t *testing.T) {
	var logs []string
	s := open(t, tempPath(t), Options{Logf: func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) }})
	wait(t, s.Begin(beginRec("a", "f", t0)))
	if err := s.segs[len(s.segs)-1].f.Close(); err != nil {
		t.Fatal(err)
	}
	err := s.Intent("a", "s").Wait()
	if err == nil || !strings.Contains(err.Error(), "commit of 1 records") {
		t.Fatalf("Wait after the file broke: %v", err)
	}
	if err2 := s.Intent("a", "s").Wait(); err2 == nil || err2.Error() != "journal intent of execution a: "+err.Error() {
		t.Errorf("next record: %v, want the first failure", err2)
	}
	if len(logs) != 1 {
		t.Errorf("logs: %q", logs)
	}
}

// TestCrashLosesSuffix kills a process that journals as fast as it can
// and checks that what is durable is a prefix of what it queued, holding
// every record it saw committed.
func TestCrashLosesSuffix(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	path := tempPath(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := -1
	sc := bufio.NewScanner(out)
	for n := 0; sc.Scan(); n++ {
		i, err := strconv.Atoi(sc.Text())
		if err != nil {
			continue // the test framework's own output
		}
		acked = max(acked, i)
		if n == 3000 {
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
		}
	}
	_ = cmd.Wait()
	if acked < 3000 {
		t.Fatalf("the helper acknowledged %d records", acked+1)
	}

	s := open(t, path, Options{})
	durable, err := crashNumbers(s)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(durable)
	for i, got := range durable {
		if got != i {
			t.Fatalf("record %d is durable and record %d is not: not a prefix", got, i)
		}
	}
	if len(durable) <= acked {
		t.Fatalf("%d records durable, record %d was acknowledged", len(durable), acked)
	}
	t.Logf("%d records acknowledged, %d durable", acked+1, len(durable))
	// The indexes are whole too.
	if _, err := s.Unfinished(); err != nil {
		t.Error(err)
	}
}

const crashEnv = "ORCHESTRO_JOURNAL_CRASH_PATH"

// TestCrashHelper is TestCrashLosesSuffix's process: 16 executions at a
// time, each Begin, Intent, Step, Compensation, Intent, End, every record
// carrying its number in the queue; it prints the numbers of the records
// committed, in order, until it is killed.
func TestCrashHelper(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("run by TestCrashLosesSuffix")
	}
	s, err := Open(path, Options{Retain: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	type queued struct {
		i int
		c flow.Commit
	}
	acks := make(chan queued, 512)
	go func() {
		w := bufio.NewWriter(os.Stdout)
		for q := range acks {
			if err := q.c.Wait(); err != nil {
				panic(err)
			}
			fmt.Fprintln(w, q.i)
			if len(acks) == 0 {
				_ = w.Flush()
			}
		}
	}()
	const slots = 16
	var ids [slots]string
	for i := 0; ; i++ {
		slot, n := i%slots, strconv.Itoa(i)
		var c flow.Commit
		switch (i / slots) % 6 {
		case 0:
			ids[slot] = "e" + n
			b := beginRec(ids[slot], "f", t0)
			b.Input.Path = n
			c = s.Begin(b)
		case 1, 4:
			c = s.Intent(ids[slot], n)
		case 2:
			c = s.Step(ids[slot], &flow.StepRecord{Step: n, Body: make([]byte, 2000)})
		case 3:
			c = s.Compensation(ids[slot], &flow.CompensationResult{Step: n})
		case 5:
			c = s.End(ids[slot], &flow.EndRecord{FailedStep: n})
		}
		acks <- queued{i, c}
	}
}

// crashNumbers returns the queue numbers the durable TestCrashHelper
// records carry.
func crashNumbers(s *Store) ([]int, error) {
	s.idx.RLock()
	defer s.idx.RUnlock()
	var out []string
	for _, e := range s.entries {
		t, err := s.read(e)
		if err != nil {
			return nil, err
		}
		out = append(out, t.begin.Input.Path)
		out = append(out, t.intents...)
		for _, r := range t.steps {
			out = append(out, r.Step)
		}
		for _, r := range t.comps {
			out = append(out, r.Step)
		}
		if t.end != nil {
			out = append(out, t.end.FailedStep)
		}
	}
	nums := make([]int, len(out))
	for i, o := range out {
		n, err := strconv.Atoi(o)
		if err != nil {
			return nil, err
		}
		nums[i] = n
	}
	return nums, nil
}

// TestLazyCommit: a record nobody waits for is committed all the same,
// by the lazy-commit timer; Sync commits what is queued for a reader.
func TestLazyCommit(t *testing.T) {
	var commits atomic.Int64
	s := open(t, tempPath(t), Options{OnCommit: func(int, time.Duration) { commits.Add(1) }})
	s.Begin(beginRec("lazy", "f", t0))
	for deadline := time.Now().Add(5 * time.Second); commits.Load() == 0; {
		if time.Now().After(deadline) {
			t.Fatal("a record nobody waited for was not committed")
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := s.Get("lazy"); err != nil {
		t.Errorf("Get after the lazy commit: %v", err)
	}

	s.Begin(beginRec("synced", "f", t0))
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("synced"); err != nil {
		t.Errorf("Get after Sync: %v", err)
	}
	if err := s.Sync(); err != nil {
		t.Errorf("Sync of an empty queue: %v", err)
	}
}
