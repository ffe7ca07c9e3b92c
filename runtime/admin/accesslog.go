package admin

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/orchestro/orchestro/runtime/api"
)

// AccessLog is the access log a gateway keeps in files.
type AccessLog interface {
	// Read calls emit with chunks of whole lines of the log selected by
	// q, oldest first, following it while q.Follow says so, until ctx
	// ends. An error of emit ends the read and is returned.
	Read(ctx context.Context, q api.AccessLogQuery, emit func([]byte) error) error
}

// ErrNoAccessLogFile is what a gateway answers (404) when its access log
// is not kept in files: it goes to its standard output, or nowhere.
var ErrNoAccessLogFile = errors.New("this gateway keeps no access log file")

// maxAccessLine bounds one line of an access log a client reads: a line
// holds a request's path, which the gateway bounds well below this.
const maxAccessLine = 1 << 20

func (s *Server) handleAccessLog(w http.ResponseWriter, r *http.Request) {
	if s.accessLog == nil {
		s.fail(w, r, NotFound(ErrNoAccessLogFile))
		return
	}
	q, err := parseAccessLogQuery(r.URL.Query())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	rc := http.NewResponseController(w)
	if q.Follow {
		// A stream lasts as long as the client wants.
		_ = rc.SetWriteDeadline(time.Time{})
		w.WriteHeader(http.StatusOK)
		flush(rc)
	}
	err = s.accessLog.Read(r.Context(), q, func(lines []byte) error {
		if _, err := w.Write(lines); err != nil {
			return err
		}
		if q.Follow {
			if err := rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
				return err
			}
		}
		return nil
	})
	if err != nil && r.Context().Err() == nil {
		// The status line may be sent already: all that is left is to
		// end the stream, and to say why where it is read.
		s.log.Warn("admin: read the access log", "err", err)
	}
}

// accessLogQuery is the query string of q, as parseAccessLogQuery reads
// it back.
func accessLogQuery(q api.AccessLogQuery) url.Values {
	v := url.Values{}
	if q.Tail >= 0 {
		v.Set("tail", strconv.Itoa(q.Tail))
	}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339Nano))
	}
	if q.Follow {
		v.Set("follow", "1")
	}
	return v
}

func parseAccessLogQuery(v url.Values) (api.AccessLogQuery, error) {
	var q api.AccessLogQuery
	var err error
	if q.Tail, err = queryCount(v, "tail", -1); err != nil {
		return q, err
	}
	if q.Since, err = queryTime(v, "since"); err != nil {
		return q, err
	}
	q.Follow, err = queryBool(v, "follow")
	return q, err
}

// AccessLog calls fn with each line of the gateway's access log that q
// selects, oldest first, and with q.Follow each later line as it is
// written, until the gateway ends the stream or ctx ends (then it returns
// nil). A gateway that keeps no access log file answers 404: see
// IsNoAccessLogFile.
func (c *Client) AccessLog(ctx context.Context, q api.AccessLogQuery, fn func(line []byte)) error {
	op := c.op("read the access log of", "")
	path := api.PathAccessLog
	if qs := accessLogQuery(q).Encode(); qs != "" {
		path += "?" + qs
	}
	return c.streamLines(ctx, op, path, maxAccessLine, func(line []byte) error {
		fn(line)
		return nil
	})
}

// IsNoAccessLogFile reports whether err is a gateway's answer that it
// keeps no access log file (or, older, knows no such endpoint).
func IsNoAccessLogFile(err error) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Code == http.StatusNotFound
}
