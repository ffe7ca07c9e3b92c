package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/orchestro/orchestro/runtime/api"
)

// logFileName is the access log being written; older ones are
// logFileName.1 (the newest) to logFileName.<maxFiles-1>.
const logFileName = "access.log"

// logFile is an access log kept in a directory as files rotated by size,
// as nginx's logrotate or Caddy's roll settings would keep it, but by the
// writer itself: the log never takes more than maxSize × maxFiles. Write
// is called with whole lines; readers (the admin API) read the files
// back, and follow the one being written across rotations.
type logFile struct {
	dir      string
	maxSize  int64
	maxFiles int

	mu   sync.Mutex
	f    *os.File
	size int64
	// gen counts rotations: a follower reading generation gen's file
	// knows it is complete once gen has moved on.
	gen uint64
	// changed is closed, and replaced, whenever lines are written or the
	// file rotates: followers wait on it.
	changed chan struct{}
}

// openLogFile opens the access log in dir, creating dir if it is missing,
// and goes on writing the file a previous gateway of the cell left there.
func openLogFile(dir string, maxSize int64, maxFiles int) (*logFile, error) {
	if maxSize <= 0 || maxFiles < 1 {
		return nil, fmt.Errorf("access log: bad bound: %d files of %d bytes", maxFiles, maxSize)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("access log: %w", err)
	}
	l := &logFile{dir: dir, maxSize: maxSize, maxFiles: maxFiles, changed: make(chan struct{})}
	f, err := os.OpenFile(l.path(0), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("access log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("access log: %w", err)
	}
	l.f, l.size = f, st.Size()
	// A bound lowered since the files were written: drop the extra ones.
	for i := maxFiles; ; i++ {
		if err := os.Remove(l.path(i)); err != nil {
			break
		}
	}
	return l, nil
}

// path is the name of the file i rotations old.
func (l *logFile) path(i int) string {
	if i == 0 {
		return filepath.Join(l.dir, logFileName)
	}
	return filepath.Join(l.dir, logFileName+"."+strconv.Itoa(i))
}

// Write appends p, whole lines, rotating first when p would take the file
// past its size. A chunk is never split across files.
func (l *logFile) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return 0, os.ErrClosed
	}
	if l.size > 0 && l.size+int64(len(p)) > l.maxSize {
		if err := l.rotateLocked(); err != nil {
			return 0, err
		}
	}
	n, err := l.f.Write(p)
	l.size += int64(n)
	l.notifyLocked()
	return n, err
}

// rotateLocked shifts every file one place older, dropping the oldest, and
// starts an empty file.
func (l *logFile) rotateLocked() error {
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("access log: %w", err)
	}
	l.f = nil
	if l.maxFiles == 1 {
		_ = os.Remove(l.path(0))
	}
	for i := l.maxFiles - 1; i >= 1; i-- {
		if err := os.Rename(l.path(i-1), l.path(i)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("access log: rotate: %w", err)
		}
	}
	f, err := os.OpenFile(l.path(0), os.O_WRONLY|os.O_CREATE|os.O_APPEND|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("access log: rotate: %w", err)
	}
	l.f, l.size = f, 0
	l.gen++
	l.notifyLocked()
	return nil
}

func (l *logFile) notifyLocked() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// Close closes the file; readers following it stop waiting.
func (l *logFile) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	l.notifyLocked()
	return err
}

// Read calls emit with the lines of the log selected by q, oldest first,
// in chunks of whole lines; with q.Follow it goes on with lines as they
// are written, until ctx ends or the log is closed. An error of emit
// ends the read and is returned.
func (l *logFile) Read(ctx context.Context, q api.AccessLogQuery, emit func([]byte) error) error {
	// The files are opened together, under the lock, so that a rotation
	// cannot shift them while they are read: an open file keeps its
	// contents whatever its name becomes.
	l.mu.Lock()
	files := make([]*os.File, 0, l.maxFiles)
	for i := l.maxFiles - 1; i >= 0; i-- {
		f, err := os.Open(l.path(i))
		if err != nil {
			continue
		}
		files = append(files, f)
	}
	gen, closed := l.gen, l.f == nil
	l.mu.Unlock()
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	if len(files) == 0 {
		return nil
	}
	// The last of files is the one being written.
	start, skip := 0, 0
	if q.Tail >= 0 {
		var err error
		if start, skip, err = tailStart(files, q.Tail); err != nil {
			return err
		}
	}
	r := &lineReader{emit: emit, since: q.Since, skip: skip}
	for _, f := range files[start:] {
		if err := r.copy(f); err != nil {
			return err
		}
	}
	if !q.Follow || closed {
		return r.flush()
	}
	cur := files[len(files)-1]
	for {
		l.mu.Lock()
		changed, now, closed := l.changed, l.gen, l.f == nil
		var next []*os.File
		// lost counts the files written since cur that the bound has
		// already dropped: a follower more than maxFiles rotations
		// behind cannot read them any more.
		var lost uint64
		if now != gen && !closed {
			// Rotated: cur is complete, and the files written since
			// are, oldest first, path(now-gen-1) to path(0), those
			// still there.
			if now-gen > uint64(l.maxFiles) {
				lost = now - gen - uint64(l.maxFiles)
			}
			for i := int(min(now-gen, uint64(l.maxFiles))) - 1; i >= 0; i-- {
				if f, err := os.Open(l.path(i)); err == nil {
					next = append(next, f)
				} else if i == 0 {
					// Without the file being written there is nothing
					// to follow: try again at the next change.
					for _, f := range next {
						f.Close()
					}
					next = nil
				}
			}
		}
		l.mu.Unlock()
		// Until they are read, they are closed with the others should
		// Read return.
		files = append(files, next...)
		if err := r.copy(cur); err != nil {
			return err
		}
		switch {
		case closed:
			return r.flush()
		case len(next) > 0:
			r.carry = r.carry[:0] // a torn last line of the old file
			if lost > 0 {
				// Said in the stream, where the lines are missing, as
				// a line of the gateway's own log would say it.
				if err := r.flush(); err != nil {
					return err
				}
				if err := emit(lostNotice(lost, time.Now())); err != nil {
					return err
				}
			}
			for _, f := range next[:len(next)-1] {
				if err := r.copy(f); err != nil {
					return err
				}
				r.carry = r.carry[:0]
			}
			// Read to their end, the files before the new one are
			// closed: a long follow holds one file open, not one per
			// rotation.
			cur, gen = next[len(next)-1], now
			for _, f := range files[:len(files)-1] {
				f.Close()
			}
			files = files[len(files)-1:]
			continue
		}
		if err := r.flush(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return r.flush()
		case <-changed:
		}
	}
}

// lostNotice is the line a follower gets in place of n files of the log
// that rotated away before it read them: a warning in the form of the
// gateway's own log lines, which `logs CELL/gateway` shows beside the
// access log.
func lostNotice(n uint64, now time.Time) []byte {
	files := "files"
	if n == 1 {
		files = "file"
	}
	msg := fmt.Sprintf("access log: this reader fell behind, and %d %s of the log rotated away before it read them; their lines are missing here", n, files)
	b, _ := json.Marshal(struct {
		Time      string `json:"time"`
		Level     string `json:"level"`
		Msg       string `json:"msg"`
		LostFiles uint64 `json:"lost_files"`
	}{now.UTC().Format(time.RFC3339Nano), "WARN", msg, n})
	return append(b, '\n')
}

// tailStart finds where the last n lines of files begin: the index of the
// file, and how many lines of it come before.
func tailStart(files []*os.File, n int) (int, int, error) {
	for i := len(files) - 1; i >= 0; i-- {
		lines, err := countLines(files[i])
		if err != nil {
			return 0, 0, err
		}
		if lines >= n {
			return i, lines - n, nil
		}
		n -= lines
	}
	return 0, 0, nil
}

// countLines counts the complete lines of f, leaving its offset at the
// start.
func countLines(f *os.File) (int, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	buf := make([]byte, 64<<10)
	n := 0
	for {
		m, err := f.Read(buf)
		n += bytes.Count(buf[:m], []byte{'\n'})
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, err
		}
	}
	_, err := f.Seek(0, io.SeekStart)
	return n, err
}

// lineReader copies whole lines from files to emit, in chunks, skipping
// the first skip lines and those of requests before since.
type lineReader struct {
	emit  func([]byte) error
	since time.Time
	skip  int
	out   []byte
	// carry is a line read in part: the writer was writing it.
	carry []byte
	br    *bufio.Reader
}

// copy reads f from its offset to its end.
func (r *lineReader) copy(f *os.File) error {
	if r.br == nil {
		r.br = bufio.NewReaderSize(f, 64<<10)
	} else {
		r.br.Reset(f)
	}
	br := r.br
	for {
		line, err := br.ReadSlice('\n')
		switch {
		case err == nil:
			if len(r.carry) > 0 {
				line = append(r.carry, line...)
				r.carry = r.carry[:0]
			}
			if err := r.line(line); err != nil {
				return err
			}
		case errors.Is(err, bufio.ErrBufferFull):
			r.carry = append(r.carry, line...)
		case err == io.EOF:
			r.carry = append(r.carry, line...)
			return nil
		default:
			return err
		}
	}
}

func (r *lineReader) line(line []byte) error {
	if r.skip > 0 {
		r.skip--
		return nil
	}
	if !r.since.IsZero() {
		if t, ok := api.AccessLineTime(line); ok && t.Before(r.since) {
			return nil
		}
	}
	r.out = append(r.out, line...)
	if len(r.out) >= 32<<10 {
		return r.flush()
	}
	return nil
}

// flush hands the lines gathered so far to emit.
func (r *lineReader) flush() error {
	if len(r.out) == 0 {
		return nil
	}
	err := r.emit(r.out)
	r.out = r.out[:0]
	return err
}
