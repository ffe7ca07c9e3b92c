package tui

import (
	"testing"

	"github.com/orchestro/orchestro/runtime/api"
)

func TestEventSubject(t *testing.T) {
	tests := []struct {
		name string
		ev   api.Event
		want string
	}{
		{"cell", api.Event{Cell: "shop"}, "shop"},
		{"service", api.Event{Cell: "shop", Service: "orders"}, "shop/orders"},
		{"replica number", api.Event{Cell: "shop", Service: "orders", Replica: "2"}, "shop/orders-2"},
		{"replica zero", api.Event{Cell: "shop", Service: "orders", Replica: "0"}, "shop/orders-0"},
		// Digits are a number however many there are: the subject is
		// text, never parsed, so no int overflow decides the form.
		{"replica number too big for an int", api.Event{Cell: "shop", Service: "orders", Replica: "123456789012345678901"}, "shop/orders-123456789012345678901"},
		{"container name", api.Event{Cell: "shop", Service: "orders", Replica: "demo-shop-orders-2"}, "demo-shop-orders-2"},
		{"signed is a name", api.Event{Cell: "shop", Service: "orders", Replica: "-1"}, "-1"},
		{"replica without service", api.Event{Cell: "shop", Replica: "3"}, "shop-3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := EventSubject(tt.ev); got != tt.want {
				t.Errorf("EventSubject(%+v) = %q, want %q", tt.ev, got, tt.want)
			}
		})
	}
}
