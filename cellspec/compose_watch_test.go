package cellspec

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/google/go-cmp/cmp"
)

// TestComposeDevelopWatch checks that develop.watch entries map onto the
// service's rules, and that each one orchestro carries out differently, or
// not at all, is warned about where it is written.
func TestComposeDevelopWatch(t *testing.T) {
	path := writeCompose(t, "dev", map[string]string{
		"api/Dockerfile": "FROM scratch\n",
		"compose.yaml": `x-orchestro: {gateway: {port: 8090}}
services:
  api:
    build: ./api
    expose: ["8080"]
    develop:
      watch:
        - path: ./api
          action: rebuild
          ignore: [node_modules/, "*.md"]
        - path: ./api/static
          action: sync
          target: /srv/static
          include: ["*.css"]
        - path: ./api/conf
          action: sync+restart
          target: /etc/api
        - path: ./api/hooks
          action: sync+exec
          target: /hooks
          exec:
            command: ["kill", "-HUP", "1"]
        - path: ./api/reload
          action: restart
          initial_sync: true
  web:
    image: nginx
    develop:
      watch:
        - path: ./web
          action: rebuild
        - path: ./web/conf
          action: sync+restart
          target: /etc/nginx
  plain:
    image: example/plain
`})
	rc, warns, probs := loadCompose(path, MapEnv(nil))
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	dir := filepath.Dir(path)
	api := filepath.Join(dir, "api")
	want := map[string]*Develop{
		"api": {Watch: []WatchRule{
			{Path: api, Action: WatchRebuild, Ignore: []string{"node_modules/", "*.md"}},
			{Path: filepath.Join(api, "static"), Action: WatchSync, Target: "/srv/static", Include: []string{"*.css"}},
			{Path: filepath.Join(api, "conf"), Action: WatchRebuild},
			{Path: filepath.Join(api, "hooks"), Action: WatchSync, Target: "/hooks"},
			{Path: filepath.Join(api, "reload"), Action: WatchRestart},
		}},
		"web":   {},
		"plain": nil,
	}
	for name, w := range want {
		if diff := cmp.Diff(w, rc.cell.Services[name].Develop); diff != "" {
			t.Errorf("services.%s.develop (-want +got):\n%s", name, diff)
		}
	}
	var got []string
	for _, w := range warns {
		if strings.Contains(w.Path, "develop") {
			got = append(got, strings.TrimPrefix(w.String(), path+":"))
		}
	}
	wantWarns := []string{
		"16:19: services.api.develop.watch[2].action: sync+restart is carried out as rebuild by orchestro (a rolling restart starts new containers from the image, which would not have the synced files)",
		"19:19: services.api.develop.watch[3].action: sync+exec is carried out as sync by orchestro (the exec command is not run)",
		"21:11: services.api.develop.watch[3].exec: not honoured by orchestro (no command is run after a sync)",
		"25:11: services.api.develop.watch[4].initial_sync: not honoured by orchestro (files are synced when they change)",
		"31:19: services.web.develop.watch[0].action: rebuild not honoured by orchestro: the service has no build",
		"33:19: services.web.develop.watch[1].action: sync+restart not honoured by orchestro: it rebuilds instead, and the path is outside the build context",
	}
	if diff := cmp.Diff(wantWarns, got); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
}

// TestWatchRuleUnknownAction checks that an action compose may add later
// is warned about and dropped.
func TestWatchRuleUnknownAction(t *testing.T) {
	r, note := watchRule(types.Trigger{Path: "./x", Action: "sync+teleport"}, "/p", &Build{Context: "/p"})
	if r != nil {
		t.Errorf("rule = %+v, want none", r)
	}
	if want := `action "sync+teleport" not honoured by orchestro (it knows rebuild, sync, sync+restart and restart)`; note != want {
		t.Errorf("note = %q, want %q", note, want)
	}
}
