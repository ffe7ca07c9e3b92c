package cellspec

import (
	"strings"
	"testing"
)

func TestIsDNSLabel(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"a", true},
		{"0", true},
		{"shop", true},
		{"shop-2", true},
		{"a--b", true},
		{strings.Repeat("a", 63), true},
		{"", false},
		{strings.Repeat("a", 64), false},
		{"Shop", false},
		{"-a", false},
		{"a-", false},
		{"a_b", false},
		{"a.b", false},
		{"a b", false},
		{"café", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsDNSLabel(tt.name); got != tt.want {
				t.Errorf("IsDNSLabel(%q) = %v, want %v", tt.name, got, tt.want)
			}
		})
	}
}
