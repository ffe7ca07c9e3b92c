package main

import (
	"strings"
	"testing"
)

// testExec: `exec` runs a command in a replica or a gateway of the running
// demo, passes its output and its exit status through, and says why when
// there is nothing to run it in, or nothing to run. The demo's images hold one static binary
// each (/app, /orchestro in gateways), and no shell.
func testExec(t *testing.T, p *project) {
	// The scenarios before this one scaled and rolled catalog: its
	// replica numbers are whatever they are now.
	cli := requireDocker(t)
	replica := ""
	for _, c := range listContainers(t, cli, p.name, labelService+"=catalog") {
		if c.State == "running" {
			replica = c.Labels[labelReplica]
			break
		}
	}
	if replica == "" {
		t.Fatal("no running catalog replica")
	}
	for _, tc := range []struct {
		name     string
		args     []string
		wantCode int
		stdout   string // a substring of stdout
		stderr   string // a substring of stderr
	}{
		{name: "in a gateway", args: []string{"exec", "shop/gateway", "--", "/orchestro", "version"}, stdout: "orchestro"},
		{name: "exit status passed through", args: []string{"exec", "shop/gateway", "/orchestro", "no-such-command"}, wantCode: 2, stderr: "no-such-command"},
		// The engine writes why into the command's output, and exits 126,
		// as docker exec does.
		{name: "replica N, no such file", args: []string{"exec", "-T", "shop/catalog-" + replica, "/nope"}, wantCode: 126, stdout: `exec: "/nope"`},
		{name: "no such replica", args: []string{"exec", "shop/catalog-99", "/app"}, wantCode: 1, stderr: "has no replica shop/catalog-99"},
		{name: "unknown service", args: []string{"exec", "shop/catalgo", "/app"}, wantCode: 2, stderr: `did you mean "catalog"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := p.run(t, tc.args...)
			if code != tc.wantCode {
				t.Errorf("exec exited %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.wantCode, stdout, stderr)
			}
			if !strings.Contains(stdout, tc.stdout) {
				t.Errorf("stdout does not hold %q:\n%s", tc.stdout, stdout)
			}
			if !strings.Contains(stderr, tc.stderr) {
				t.Errorf("stderr does not hold %q:\n%s", tc.stderr, stderr)
			}
		})
	}
}
