package gateway

import "testing"

func TestExitedUnasked(t *testing.T) {
	tests := []struct {
		prev, cur ContainerState
		adopting  bool
		want      bool
	}{
		{ContainerRunning, ContainerExited, false, true},
		{ContainerRunning, ContainerDead, false, true},
		{ContainerPaused, ContainerExited, false, true},
		{ContainerRunning, ContainerRunning, false, false},
		{ContainerRunning, ContainerRemoving, false, false},
		{ContainerExited, ContainerExited, false, false},
		// Created by this controller and crashed before it was seen
		// running: a crash all the same.
		{"", ContainerExited, false, true},
		// Found stopped when the gateway (re)started: not held against
		// the service.
		{"", ContainerExited, true, false},
		{"", ContainerRunning, false, false},
	}
	for _, tt := range tests {
		if got := exitedUnasked(tt.prev, tt.cur, tt.adopting); got != tt.want {
			t.Errorf("exitedUnasked(%q, %q, adopting %v) = %v, want %v", tt.prev, tt.cur, tt.adopting, got, tt.want)
		}
	}
}
