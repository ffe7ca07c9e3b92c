package runtime

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/google/go-cmp/cmp"

	"github.com/orchestro/orchestro/cellspec"
	"github.com/orchestro/orchestro/runtime/api"
)

func TestDebouncer(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	type event struct {
		ms   int
		path string
	}
	tests := []struct {
		name   string
		events []event
		// takeAt is when take is tried, in order; want is the batch each
		// try returns (nil: not due).
		takeAt []int
		want   [][]string
	}{
		{
			name:   "one save is due after the quiet period",
			events: []event{{0, "/a"}},
			takeAt: []int{299, 300},
			want:   [][]string{nil, {"/a"}},
		},
		{
			name:   "a burst waits for quiet after its last event",
			events: []event{{0, "/b"}, {200, "/a"}, {400, "/b"}},
			takeAt: []int{600, 700},
			want:   [][]string{nil, {"/a", "/b"}},
		},
		{
			name:   "a stream that never goes quiet is taken after the max delay",
			events: []event{{0, "/a"}, {250, "/b"}, {500, "/c"}, {750, "/d"}, {1000, "/e"}},
			takeAt: []int{999, 1000},
			want:   [][]string{nil, {"/a", "/b", "/c", "/d", "/e"}},
		},
		{
			name:   "nothing pending",
			takeAt: []int{10000},
			want:   [][]string{nil},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := debouncer{quiet: 300 * time.Millisecond, maxDelay: time.Second}
			for _, e := range tt.events {
				d.add(e.path, at(e.ms))
			}
			var got [][]string
			for _, ms := range tt.takeAt {
				paths, first, ok := d.take(at(ms))
				if ok && !first.Equal(at(tt.events[0].ms)) {
					t.Errorf("first = %s, want %s", first, at(tt.events[0].ms))
				}
				got = append(got, paths)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("batches (-want +got):\n%s", diff)
			}
			if _, pending := d.due(); pending {
				t.Error("a batch is still pending after it was taken")
			}
		})
	}
}

// writeTree writes files (slash-separated names under dir) and returns
// dir.
func writeTree(t *testing.T, dir string, files map[string]string) string {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestServiceWatchRulesMatch(t *testing.T) {
	dir := writeTree(t, t.TempDir(), map[string]string{
		"api/Dockerfile":           "FROM scratch\n",
		"api/.dockerignore":        "*.tmp\nnode_modules\ndocs\n!docs/keep.md\nDockerfile\n",
		"api/main.go":              "package main\n",
		"other/Dockerfile.dev":     "FROM scratch\n",
		"web/Dockerfile":           "FROM scratch\n",
		"web/static/site.css":      "",
		"web/.dockerignore":        "secret.txt\n",
		"gosvc/cmd/app/main.go":    "package main\n",
		"gosvc/cmd/app/app.txt":    "",
		"gosvc/cmd/app/a_test.go":  "",
		"gosvc/cmd/app/sub/x.go":   "",
		"gosvc/internal/lib/l.go":  "",
		"gosvc/internal/lib/l.txt": "",
	})
	j := func(p string) string { return filepath.Join(dir, filepath.FromSlash(p)) }
	cell := &cellspec.Cell{Name: "shop", Services: map[string]*cellspec.Service{
		"api":   {Name: "api", Build: &cellspec.Build{Context: j("api")}},
		"dev":   {Name: "dev", Build: &cellspec.Build{Context: j("api"), Dockerfile: j("other/Dockerfile.dev")}},
		"image": {Name: "image", Image: "nginx"},
		"go":    {Name: "go", Build: &cellspec.Build{Go: j("gosvc/cmd/app")}},
		"web": {Name: "web", Build: &cellspec.Build{Context: j("web")}, Develop: &cellspec.Develop{Watch: []cellspec.WatchRule{
			{Path: j("web/static"), Action: cellspec.WatchSync, Target: "/srv", Include: []string{"*.css"}},
			{Path: j("web"), Action: cellspec.WatchRebuild, Ignore: []string{"static/"}},
		}}},
	}}
	goList := func(ctx context.Context, pkg string) ([]watchScope, error) {
		return []watchScope{
			{path: pkg, goSources: true},
			{path: j("gosvc/internal/lib"), goSources: true},
			{path: j("gosvc/cmd/app/app.txt")},
			{path: j("gosvc/go.mod")},
		}, nil
	}
	tests := []struct {
		service string
		path    string
		want    string // the actions of the rules that match, or ""
	}{
		{"api", "api/main.go", "rebuild"},
		{"api", "api/pkg/new/file.go", "rebuild"},
		{"api", "api/notes.tmp", ""},
		{"api", "api/node_modules/x/index.js", ""},
		{"api", "api/docs/guide.md", ""},
		{"api", "api/docs/keep.md", "rebuild"},
		{"api", "api/Dockerfile", "rebuild"},       // always sent, though ignored
		{"api", "api/.dockerignore", "rebuild"},    // always sent
		{"api", "other/Dockerfile.dev", ""},        // not api's Dockerfile
		{"dev", "other/Dockerfile.dev", "rebuild"}, // outside the context, still an input
		{"dev", "other/README", ""},
		{"image", "api/main.go", ""},
		{"go", "gosvc/cmd/app/main.go", "rebuild"},
		{"go", "gosvc/cmd/app/new.go", "rebuild"},
		{"go", "gosvc/cmd/app/a_test.go", ""},
		{"go", "gosvc/cmd/app/.#main.go", ""},
		{"go", "gosvc/cmd/app/app.txt", "rebuild"}, // embedded
		{"go", "gosvc/cmd/app/README.md", ""},
		{"go", "gosvc/cmd/app/sub/x.go", ""}, // another package, not a dependency
		{"go", "gosvc/internal/lib/l.go", "rebuild"},
		{"go", "gosvc/internal/lib/l.txt", ""},
		{"go", "gosvc/go.mod", "rebuild"},
		{"web", "web/static/site.css", "sync"},
		{"web", "web/static/logo.png", ""},
		{"web", "web/main.go", "rebuild"},
		{"web", "web/secret.txt", ""}, // the context's .dockerignore
	}
	for _, tt := range tests {
		t.Run(tt.service+" "+tt.path, func(t *testing.T) {
			rules, warn := serviceWatchRules(t.Context(), cell, cell.Services[tt.service], goList)
			if warn != "" {
				t.Errorf("warning: %s", warn)
			}
			var got []string
			p := j(tt.path)
			for _, r := range rules {
				for _, s := range r.scopes {
					if s.matches(p) && !skipPath(p) {
						got = append(got, r.action)
						break
					}
				}
			}
			if g := strings.Join(got, ","); g != tt.want {
				t.Errorf("actions = %q, want %q", g, tt.want)
			}
		})
	}
}

func TestSkipPath(t *testing.T) {
	for p, want := range map[string]bool{
		"/src/main.go":                   false,
		"/src/.git/index":                true,
		"/src/.git":                      true,
		"/src/main.go~":                  true,
		"/src/.main.go.swp":              true,
		"/src/4913":                      true,
		"/src/.#main.go":                 true,
		"/src/#main.go#":                 true,
		"/src/main.go___jb_tmp___":       true,
		"/src/.idea/workspace.xml":       true,
		"/src/static/.DS_Store":          true,
		"/src/gitignored/.gitkeep":       false,
		"/src/templates/index.html.tmpl": false,
	} {
		if got := skipPath(p); got != want {
			t.Errorf("skipPath(%s) = %v, want %v", p, got, want)
		}
	}
}

func TestPlanWatch(t *testing.T) {
	rules := []watchRule{
		{cell: "shop", service: "web", action: cellspec.WatchSync, root: "/p/web/static", target: "/srv",
			scopes: []watchScope{{path: "/p/web/static", recursive: true}}},
		{cell: "shop", service: "web", action: cellspec.WatchRestart, root: "/p/web/conf",
			scopes: []watchScope{{path: "/p/web/conf", recursive: true}}},
		{cell: "shop", service: "catalog", action: cellspec.WatchRebuild,
			scopes: []watchScope{{path: "/p/catalog", goSources: true}, {path: "/p/go.mod"}}},
		{cell: "edge", service: "api", action: cellspec.WatchRebuild,
			scopes: []watchScope{{path: "/p/api", recursive: true}}},
		{cell: "edge", service: "api", action: cellspec.WatchSync, root: "/p/api/static", target: "/srv",
			scopes: []watchScope{{path: "/p/api/static", recursive: true}}},
		{cell: "edge", service: "file", action: cellspec.WatchSync, root: "/p/one.conf", target: "/etc/one.conf",
			scopes: []watchScope{{path: "/p/one.conf"}}},
	}
	tests := []struct {
		name  string
		paths []string
		want  []string
	}{
		{"nothing relevant", []string{"/p/README.md", "/p/catalog/notes.txt"}, nil},
		{"a go source rebuilds", []string{"/p/catalog/main.go"}, []string{"rebuild shop/catalog"}},
		{"go.mod rebuilds", []string{"/p/go.mod"}, []string{"rebuild shop/catalog"}},
		{"sync maps paths under the target", []string{"/p/web/static/b.css", "/p/web/static/img/a.png"},
			[]string{"sync shop/web: /p/web/static/b.css→/srv/b.css /p/web/static/img/a.png→/srv/img/a.png"}},
		{"sync then restart", []string{"/p/web/conf/x.conf", "/p/web/static/a.css"},
			[]string{"sync shop/web: /p/web/static/a.css→/srv/a.css", "restart shop/web"}},
		{"a rebuild makes a sync of the service moot", []string{"/p/api/static/a.css"}, []string{"rebuild edge/api"}},
		{"a file rule", []string{"/p/one.conf"}, []string{"sync edge/file: /p/one.conf→/etc/one.conf"}},
		{"services in cell/service order", []string{"/p/catalog/a.go", "/p/api/main.go", "/p/one.conf"},
			[]string{"rebuild edge/api", "sync edge/file: /p/one.conf→/etc/one.conf", "rebuild shop/catalog"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, s := range planWatch(rules, tt.paths) {
				got = append(got, s.String())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
}

func TestGoScopes(t *testing.T) {
	out := `{"Dir": "/usr/lib/go/src/fmt", "Standard": true}
{"Dir": "/home/me/go/pkg/mod/github.com/x/y@v1.0.0", "Module": {"GoMod": "/home/me/go/pkg/mod/cache/y.mod", "Version": "v1.0.0"}}
{"Dir": "/src/lib", "Module": {"GoMod": "/src/lib/go.mod", "Version": "v0.1.0", "Replace": {"GoMod": "/src/lib/go.mod"}}}
{"Dir": "/src/app/internal/db", "Module": {"Main": true, "GoMod": "/src/app/go.mod"}, "EmbedFiles": ["schema/v1.sql"]}
{"Dir": "/src/app/cmd/app", "Module": {"Main": true, "GoMod": "/src/app/go.mod"}}
`
	scopes, err := goScopes([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range scopes {
		got = append(got, s.path)
	}
	want := []string{
		"/src/lib", "/src/lib/go.mod", "/src/lib/go.sum",
		"/src/app/internal/db", "/src/app/internal/db/schema/v1.sql", "/src/app/go.mod", "/src/app/go.sum",
		"/src/app/cmd/app",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("scopes (-want +got):\n%s", diff)
	}
}

// TestGoInputs runs the go tool on a small module whose main package
// imports a package of its own and the standard library.
func TestGoInputs(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go tool")
	}
	dir := writeTree(t, t.TempDir(), map[string]string{
		"go.mod":               "module example.com/app\n\ngo 1.22\n",
		"cmd/app/main.go":      "package main\n\nimport (\n\t\"fmt\"\n\n\t\"example.com/app/internal/greet\"\n)\n\nfunc main() { fmt.Println(greet.Hello()) }\n",
		"internal/greet/g.go":  "package greet\n\nfunc Hello() string { return \"hi\" }\n",
		"internal/unused/u.go": "package unused\n",
	})
	scopes, err := goInputs(t.Context(), filepath.Join(dir, "cmd", "app"), "amd64")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range scopes {
		rel, _ := filepath.Rel(dir, s.path)
		got = append(got, filepath.ToSlash(rel))
	}
	sort.Strings(got)
	want := []string{"cmd/app", "go.mod", "go.sum", "internal/greet"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("inputs (-want +got):\n%s", diff)
	}
}

func TestSyncArchive(t *testing.T) {
	dir := writeTree(t, t.TempDir(), map[string]string{"a.css": "body{}", "img/b.txt": "b"})
	files := []syncFile{
		{host: filepath.Join(dir, "a.css"), container: "/srv/a.css"},
		{host: filepath.Join(dir, "img/b.txt"), container: "/srv/img/b.txt"},
		{host: filepath.Join(dir, "gone.css"), container: "/srv/gone.css"},
	}
	archive, deleted, err := syncArchive(files)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"/srv/gone.css"}, deleted); diff != "" {
		t.Errorf("deleted (-want +got):\n%s", diff)
	}
	got := map[string]string{}
	tr := tar.NewReader(bytes.NewReader(archive))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		got[hdr.Name] = string(data)
	}
	if diff := cmp.Diff(map[string]string{"srv/a.css": "body{}", "srv/img/b.txt": "b"}, got); diff != "" {
		t.Errorf("archive (-want +got):\n%s", diff)
	}
}

// TestWatcherEvents runs the file-watching half of a watcher on a real
// directory: an edit, a file in a directory created after the watch began,
// and an ignored file.
func TestWatcherEvents(t *testing.T) {
	dir := writeTree(t, t.TempDir(), map[string]string{
		"Dockerfile":          "FROM scratch\n",
		".dockerignore":       "*.log\nnode_modules\n",
		"main.txt":            "1",
		"node_modules/x/x.js": "",
		"src/pkg/a.txt":       "",
	})
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		t.Fatal(err)
	}
	defer fw.Close()
	w := &watcher{c: &Client{now: time.Now}, progress: api.Discard{}, fw: fw, dirs: map[string]bool{}, kick: make(chan struct{}, 1),
		deb: debouncer{quiet: time.Hour, maxDelay: time.Hour}}
	cell := &cellspec.Cell{Name: "c", Services: map[string]*cellspec.Service{"s": {Name: "s", Build: &cellspec.Build{Context: dir}}}}
	w.rules, _ = serviceWatchRules(t.Context(), cell, cell.Services["s"], nil)
	if err := w.watchRules(w.rules); err != nil {
		t.Fatal(err)
	}
	var watched []string
	for d := range w.dirs {
		rel, _ := filepath.Rel(dir, d)
		watched = append(watched, filepath.ToSlash(rel))
	}
	sort.Strings(watched)
	if diff := cmp.Diff([]string{".", "src", "src/pkg"}, watched); diff != "" {
		t.Errorf("watched directories (-want +got):\n%s", diff)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.readEvents(ctx)
	}()
	defer func() {
		cancel()
		<-done
	}()

	writeTree(t, dir, map[string]string{"main.txt": "2", "debug.log": "x"})
	if err := os.MkdirAll(filepath.Join(dir, "new", "deeper"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeTree(t, dir, map[string]string{"new/deeper/file.txt": "x"})
	want := []string{filepath.Join(dir, "main.txt"), filepath.Join(dir, "new"), filepath.Join(dir, "new", "deeper"), filepath.Join(dir, "new", "deeper", "file.txt")}
	var got []string
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		w.mu.Lock()
		got = got[:0]
		for p := range w.deb.paths {
			got = append(got, p)
		}
		w.mu.Unlock()
		sort.Strings(got)
		if cmp.Equal(want, got) {
			break
		}
		select {
		case <-w.kick:
		case <-time.After(50 * time.Millisecond):
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("changed paths (-want +got):\n%s", diff)
	}
}
