package proxy

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestValidTraceparent(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", true},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", true},
		{"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", true},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", false},
		{"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false},
		{"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", false},
		{"00-00000000000000000000000000000000-00f067aa0ba902b7-01", false},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", false},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", false},
		{"00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false},
		{"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := validTraceparent(tt.in); got != tt.want {
			t.Errorf("validTraceparent(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestNextTraceparent(t *testing.T) {
	const in = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
	t.Run("continues a valid trace", func(t *testing.T) {
		got := nextTraceparent([]string{in})
		if !validTraceparent(got) {
			t.Fatalf("invalid result %q", got)
		}
		if traceID(got) != traceID(in) || got[53:] != "00" {
			t.Errorf("got %q, want trace ID and flags of %q", got, in)
		}
		if spanID(got) == spanID(in) {
			t.Errorf("parent ID %q not replaced", spanID(got))
		}
	})
	t.Run("future version becomes 00", func(t *testing.T) {
		got := nextTraceparent([]string{"cc" + in[2:] + "-what-ever"})
		if !strings.HasPrefix(got, "00-"+traceID(in)) || len(got) != traceparentLen {
			t.Errorf("got %q", got)
		}
	})
	for name, header := range map[string][]string{
		"absent":   nil,
		"invalid":  {"garbage"},
		"repeated": {in, in},
	} {
		t.Run("starts a trace when "+name, func(t *testing.T) {
			got := nextTraceparent(header)
			if !validTraceparent(got) || got[53:] != "01" || traceID(got) == traceID(in) {
				t.Errorf("got %q, want a new sampled trace", got)
			}
		})
	}
}

func TestOutboundHeader(t *testing.T) {
	r, err := http.NewRequest(http.MethodGet, "http://shop:8081/orders", nil)
	if err != nil {
		t.Fatal(err)
	}
	r.RemoteAddr = "[::1]:5000"
	r.Header = http.Header{
		"Accept":              {"*/*"},
		"Connection":          {"keep-alive, X-Hop"},
		"X-Hop":               {"1"},
		"Keep-Alive":          {"timeout=5"},
		"Proxy-Authorization": {"Basic x"},
		"Te":                  {"trailers, deflate"},
		"Upgrade":             {"websocket"},
		"X-Forwarded-For":     {"10.0.0.1", "10.0.0.2"},
		"X-Forwarded-Host":    {"spoofed"},
		"X-Request-Id":        {"old"},
		"Traceparent":         {"old"},
		"Tracestate":          {"k=v"},
		"Expect":              {"100-continue"},
	}
	got := outboundHeader(r, "rid", "tp", "")
	want := http.Header{
		"Accept":            {"*/*"},
		"Te":                {"trailers"},
		"X-Forwarded-For":   {"10.0.0.1, 10.0.0.2, ::1"},
		"X-Forwarded-Host":  {"shop:8081"},
		"X-Forwarded-Proto": {"http"},
		"X-Request-Id":      {"rid"},
		"Traceparent":       {"tp"},
		"Tracestate":        {"k=v"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("header mismatch (-want +got):\n%s", diff)
	}

	got = outboundHeader(r, "rid", "tp", "websocket")
	if got.Get("Connection") != "Upgrade" || got.Get("Upgrade") != "websocket" {
		t.Errorf("upgrade headers not restored: %v", got)
	}
}

func TestRequestIDs(t *testing.T) {
	g := newIDGen()
	a, b := g.next(), g.next()
	if a == b || !strings.HasPrefix(a, g.prefix+"-") || len(g.prefix) != 12 {
		t.Errorf("ids %q, %q with prefix %q", a, b, g.prefix)
	}
	if other := newIDGen(); other.prefix == g.prefix {
		t.Errorf("two generators share the prefix %q", g.prefix)
	}
}

func TestClientIP(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:80": "127.0.0.1",
		"[::1]:80":     "::1",
		"pipe":         "pipe",
		"":             "",
	} {
		if got := clientIP(in); got != want {
			t.Errorf("clientIP(%q) = %q, want %q", in, got, want)
		}
	}
}
