package tui

import (
	"strings"

	"github.com/orchestro/orchestro/runtime/api"
)

// EventSubject names what an event is about, the way both `orchestro
// events` and the dashboard's events pane show it: cell, cell/service or
// cell/service-n. A replica given by container name rather than by number
// is shown as that name.
//
// Its natural home is beside api.Event; it is here because the command
// line already imports tui (for dash), so both can call it without a new
// import between packages.
func EventSubject(e api.Event) string {
	s := e.Cell
	if e.Flow != "" {
		return s + " flow " + e.Flow
	}
	if e.Service != "" {
		s += "/" + e.Service
	}
	switch {
	case e.Replica == "":
	case strings.Trim(e.Replica, "0123456789") == "":
		s += "-" + e.Replica
	default:
		s = e.Replica
	}
	return s
}
