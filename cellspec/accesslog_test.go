package cellspec

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func accessLogCellFile(lines string) string {
	return "cell: shop\ngateway:\n  port: 8081\n  " + lines + "\nservices:\n  orders: {image: example/orders:1, port: 8080}\n"
}

func TestAccessLogSettings(t *testing.T) {
	def := AccessLog{To: AccessLogFile, Sample: 1, MaxSize: DefaultAccessLogMaxSize, MaxFiles: DefaultAccessLogMaxFiles}
	with := func(f func(*AccessLog)) AccessLog {
		a := def
		f(&a)
		return a
	}
	tests := []struct {
		name  string
		lines string // under gateway:; "" leaves access_log out
		want  AccessLog
		// wantJSON is what the cell's JSON carries: "" for nothing.
		wantJSON string
	}{
		{name: "left out", want: def},
		{name: "file", lines: "access_log: file", want: def, wantJSON: `"access_log":{"to":"file"}`},
		{name: "stdout", lines: "access_log: stdout", want: with(func(a *AccessLog) { a.To = AccessLogStdout }), wantJSON: `"access_log":{"to":"stdout"}`},
		{name: "off", lines: "access_log: off", want: with(func(a *AccessLog) { a.To = AccessLogOff }), wantJSON: `"access_log":{"to":"off"}`},
		{name: "false", lines: "access_log: false", want: with(func(a *AccessLog) { a.To = AccessLogOff })},
		{name: "sampled", lines: "access_log: {sample: 0.1}", want: with(func(a *AccessLog) { a.Sample = 0.1 }), wantJSON: `"access_log":{"sample":0.1}`},
		{
			name:  "rotation",
			lines: "access_log:\n    to: file\n    max_size: 1M\n    max_files: 3",
			want:  with(func(a *AccessLog) { a.MaxSize, a.MaxFiles = 1<<20, 3 }),
		},
		{
			name:  "stdout sampled",
			lines: "access_log: {to: stdout, sample: 0.5}",
			want:  with(func(a *AccessLog) { a.To, a.Sample = AccessLogStdout, 0.5 }),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := accessLogCellFile(tt.lines)
			if tt.lines == "" {
				file = strings.Replace(file, "  \n", "", 1)
			}
			c, _, err := LoadCell("cell.yaml", []byte(file), MapEnv(nil))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, c.Gateway.AccessLogSettings()); diff != "" {
				t.Errorf("settings (-want +got):\n%s", diff)
			}
			data, err := json.Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			switch has := strings.Contains(string(data), "access_log"); {
			case tt.lines == "" && has:
				t.Errorf("JSON of a cell that leaves access_log out mentions it:\n%s", data)
			case tt.wantJSON != "" && !strings.Contains(string(data), tt.wantJSON):
				t.Errorf("JSON lacks %s:\n%s", tt.wantJSON, data)
			}
			// The gateway gets the cell as JSON: the settings survive it.
			var back Cell
			if err := json.Unmarshal(data, &back); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, back.Gateway.AccessLogSettings()); diff != "" {
				t.Errorf("settings after JSON (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAccessLogProblems(t *testing.T) {
	tests := []struct {
		name string
		line string // written under gateway:
		want []string
	}{
		{"unknown destination", "access_log: stderr",
			[]string{`cell.yaml:4:15: gateway.access_log.to: unknown access log destination "stderr" (file (the default), stdout or off)`}},
		{"misspelt destination", "access_log: {to: fille}",
			[]string{`cell.yaml:4:20: gateway.access_log.to: unknown access log destination "fille" (did you mean "file"?)`}},
		{"sample zero", "access_log: {sample: 0}",
			[]string{`cell.yaml:4:24: gateway.access_log.sample: sample must be more than 0 and at most 1, not 0 (1 logs every request, 0.1 one in ten; failed requests are always logged)`}},
		{"sample above one", "access_log: {sample: 2}",
			[]string{`cell.yaml:4:24: gateway.access_log.sample: sample must be more than 0 and at most 1, not 2 (1 logs every request, 0.1 one in ten; failed requests are always logged)`}},
		{"sample a word", "access_log: {sample: half}",
			[]string{`cell.yaml:4:24: gateway.access_log.sample: must be a number, not "half"`}},
		{"tiny files", "access_log: {max_size: 1k}",
			[]string{`cell.yaml:4:26: gateway.access_log.max_size: max_size must be at least 64KiB, not 1024 bytes`}},
		{"no files", "access_log: {max_files: 0}",
			[]string{`cell.yaml:4:27: gateway.access_log.max_files: max_files must be between 1 and 100, not 0`}},
		{"rotation of stdout", "access_log: {to: stdout, max_files: 2}",
			[]string{`cell.yaml:4:39: gateway.access_log.max_files: max_files bounds the access log's files, but the log goes to stdout (remove it, or write to: file)`}},
		{"unknown key", "access_log: {path: /tmp/x}",
			[]string{`cell.yaml:4:16: gateway.access_log.path: unknown key "path"`}},
		{"a list", "access_log: [file]",
			[]string{`cell.yaml:4:15: gateway.access_log: must be a mapping, not a list`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := LoadCell("cell.yaml", []byte(accessLogCellFile(tt.line)), MapEnv(nil))
			if diff := cmp.Diff(tt.want, problemLines(t, err, "")); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

// TestConvertAccessLog: x-orchestro.gateway.access_log is read from a
// compose file and written back by convert as it was written.
func TestConvertAccessLog(t *testing.T) {
	compose := "x-orchestro:\n  gateway:\n    port: 8081\n    access_log: {to: file, sample: 0.25, max_size: 20M}\nservices:\n  orders: {image: example/orders:1, expose: [\"8080\"]}\n"
	path := writeCompose(t, "shop", map[string]string{"compose.yaml": compose})
	p, err := Load(Options{Files: []string{path}, Env: MapEnv(nil)})
	c := oneCell(t, p, err)
	if got := c.Gateway.AccessLogSettings(); got.Sample != 0.25 || got.MaxSize != 20<<20 {
		t.Errorf("settings from compose = %+v", got)
	}
	out, _, err := ConvertCompose(path, MapEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "  access_log: {to: file, sample: 0.25, max_size: 20M}\n") {
		t.Errorf("converted cell:\n%s", out)
	}
	cellFile := filepath.Join(filepath.Dir(path), "cell.yaml")
	if err := os.WriteFile(cellFile, out, 0o644); err != nil {
		t.Fatal(err)
	}
	converted, _, err := LoadCell(cellFile, out, MapEnv(nil))
	if err != nil {
		t.Fatalf("converted cell does not load: %v\n%s", err, out)
	}
	if diff := cmp.Diff(c.Gateway.AccessLogSettings(), converted.Gateway.AccessLogSettings()); diff != "" {
		t.Errorf("settings after convert (-compose +converted):\n%s", diff)
	}
}
