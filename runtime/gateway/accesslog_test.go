package gateway

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/orchestro/orchestro/runtime/proxy"
)

func TestAccessLogIsJSON(t *testing.T) {
	var out bytes.Buffer
	l := newAccessLogger(&out, 1)
	paths := []string{"/plain", "/bell\a", "/bad\xff", `/quote"back\slash`, "/ünïcode", "/del\x7f", "/nl\n"}
	for _, p := range paths {
		l.log(&proxy.RequestRecord{Time: time.Unix(1, 0), RequestID: "caf\xe9", Method: "GET", Path: p, Status: 200, Tries: 1})
	}
	l.flush()
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != len(paths) {
		t.Fatalf("%d lines for %d records:\n%s", len(lines), len(paths), out.String())
	}
	for i, line := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("line %d is not JSON: %v: %s", i, err, line)
			continue
		}
		want := strings.ToValidUTF8(paths[i], "\ufffd")
		if rec["path"] != want {
			t.Errorf("path = %q, want %q", rec["path"], want)
		}
		if rec["request_id"] != "caf\ufffd" {
			t.Errorf("request_id = %q", rec["request_id"])
		}
	}
}
