package main

import (
	"net"
	"strconv"
	"strings"
	"testing"
)

// TestE2EUpPortInUse: `up -d --wait` of the demo while another program
// listens on the shop gateway's port exits 1 before it builds or creates
// anything, naming the cell, the port and the variable that sets it.
func TestE2EUpPortInUse(t *testing.T) {
	cli := requireDocker(t)
	p := newProject(t, "busy", demoDir(t), demoPorts...)
	port := p.ports["SHOP_PORT"]
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("hold the shop port: %v", err)
	}
	defer l.Close()

	_, stderr, code := p.run(t, "up", "-d", "--wait", "--wait-timeout", "30s")
	if code != 1 {
		t.Errorf("up exited %d, want 1:\n%s", code, stderr)
	}
	for _, want := range []string{"cell shop: port " + strconv.Itoa(port) + " on 127.0.0.1 is in use", "set SHOP_PORT to a free port"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("up's error does not say %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, "build") {
		t.Errorf("up built something before it checked the ports:\n%s", stderr)
	}
	assertNothingLeft(t, cli, p.name)
}
