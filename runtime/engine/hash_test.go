package engine

import (
	"testing"

	"github.com/orchestro/orchestro/cellspec"
)

func TestServiceConfigHash(t *testing.T) {
	base := func() *cellspec.Service {
		return &cellspec.Service{
			Name: "orders", Port: 8080, Replicas: 2, Restart: "always",
			Env:     map[string]string{"A": "1", "B": "2"},
			Volumes: []cellspec.Volume{{Type: "volume", Source: "a", Target: "/a"}, {Type: "bind", Source: "/b", Target: "/b"}},
		}
	}
	img := "sha256:1"
	h := ServiceConfigHash("demo", "shop", base(), img)
	if len(h) != 16 {
		t.Fatalf("hash %q: want 16 hex digits", h)
	}
	same := []struct {
		name   string
		change func(*cellspec.Service)
	}{
		{"replicas", func(s *cellspec.Service) { s.Replicas = 7 }},
		{"health", func(s *cellspec.Service) { s.Health = &cellspec.Health{HTTP: "/x"} }},
		{"autoscale", func(s *cellspec.Service) { s.Autoscale = &cellspec.Autoscale{Max: 3} }},
		{"volume order", func(s *cellspec.Service) { s.Volumes[0], s.Volumes[1] = s.Volumes[1], s.Volumes[0] }},
	}
	for _, tt := range same {
		s := base()
		tt.change(s)
		if got := ServiceConfigHash("demo", "shop", s, img); got != h {
			t.Errorf("%s changed the hash; it is applied without recreating containers", tt.name)
		}
	}
	differ := []struct {
		name   string
		change func(*cellspec.Service)
	}{
		{"env", func(s *cellspec.Service) { s.Env["A"] = "2" }},
		{"port", func(s *cellspec.Service) { s.Port = 9090 }},
		{"command", func(s *cellspec.Service) { s.Command = []string{"/app", "-v"} }},
		{"resources", func(s *cellspec.Service) { s.Resources.Memory = 1 << 20 }},
		{"volume", func(s *cellspec.Service) { s.Volumes[0].ReadOnly = true }},
	}
	for _, tt := range differ {
		s := base()
		tt.change(s)
		if got := ServiceConfigHash("demo", "shop", s, img); got == h {
			t.Errorf("%s did not change the hash", tt.name)
		}
	}
	if got := ServiceConfigHash("demo", "shop", base(), "sha256:2"); got == h {
		t.Error("a rebuilt image (same tag, new ID) did not change the hash")
	}
}
