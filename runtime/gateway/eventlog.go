package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/orchestro/orchestro/runtime/admin"
	"github.com/orchestro/orchestro/runtime/api"
)

// EventsPath is where a gateway keeps its cell's events, beside its state
// file: a restarted gateway (its container restarted, by the keeper or
// by hand) shows the history it had.
const EventsPath = "/var/lib/orchestro/events.jsonl"

// loadEvents reads the last max events of the file at path, oldest
// first. A missing file is a first start. A line that does not decode (a
// write the process did not finish) is skipped.
func loadEvents(path string, max int) ([]api.Event, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load events %s: %w", path, err)
	}
	defer f.Close()
	var out []api.Event
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var e api.Event
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			continue
		}
		out = append(out, e)
		if len(out) > 2*max {
			out = append(out[:0], out[len(out)-max:]...)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("load events %s: %w", path, err)
	}
	if len(out) > max {
		out = out[len(out)-max:]
	}
	return out, nil
}

// keepEvents appends every event the bus publishes to the file at path,
// one JSON line each, until ctx ends; kept are the events the file holds
// already (what loadEvents returned). The file is rewritten with the last
// backlog events written when it holds twice as many lines, so it stays
// bounded. Failures are returned: the events still reach the bus, only
// their persistence stops.
func keepEvents(ctx context.Context, bus *admin.EventBus, path string, backlog int, kept []api.Event) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("keep events in %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("keep events in %s: %w", path, err)
	}
	defer func() { _ = f.Close() }()
	// The file may hold more lines than kept (a torn one, or a previous
	// run's before its rewrite): count as if it held a backlog.
	lines := backlog
	last := append([]api.Event(nil), kept...)
	write := func(e api.Event) error {
		b, err := json.Marshal(e)
		if err != nil {
			return nil
		}
		if _, err := f.Write(append(b, '\n')); err != nil {
			return fmt.Errorf("keep events in %s: %w", path, err)
		}
		if last = append(last, e); len(last) > backlog {
			last = last[len(last)-backlog:]
		}
		if lines++; lines >= 2*backlog {
			if f, err = rewriteEvents(f, path, last); err != nil {
				return fmt.Errorf("keep events in %s: %w", path, err)
			}
			lines = len(last)
		}
		return nil
	}
	// What was published before the subscription is in its backlog, after
	// the events restored from the file.
	backlogNow, ch := bus.Subscribe(ctx)
	if len(backlogNow) > len(kept) {
		for _, e := range backlogNow[len(kept):] {
			if err := write(e); err != nil {
				return err
			}
		}
	}
	for e := range ch {
		if err := write(e); err != nil {
			return err
		}
	}
	return nil
}

// rewriteEvents replaces the file at path with events, atomically, and
// returns the new file open for appending; old is closed.
func rewriteEvents(old *os.File, path string, events []api.Event) (*os.File, error) {
	_ = old.Close()
	tmp := path + ".tmp"
	w, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	for _, e := range events {
		if err := enc.Encode(e); err != nil {
			_ = w.Close()
			return nil, err
		}
	}
	if err := bw.Flush(); err != nil {
		_ = w.Close()
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, err
	}
	return os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o600)
}
