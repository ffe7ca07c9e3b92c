package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/orchestro/orchestro/runtime/api"
)

// controllerState is what survives a gateway restart: runtime overrides,
// the latest spec pushed through the admin API and the replicas a rolling
// restart has still to replace. It lives in the gateway
// container's own filesystem, so it goes with the container.
type controllerState struct {
	Spec      *api.GatewaySpec `json:"spec,omitempty"`
	Overrides map[string]int   `json:"overrides,omitempty"`
	// Restarting holds, per service, the container IDs a rolling restart
	// has still to replace.
	Restarting map[string][]string `json:"restarting,omitempty"`
}

// loadState reads the state file into the controller, which is not running
// yet. A missing file is a first start, not an error; an unreadable one is
// reported and ignored, so the gateway runs from its container's spec
// rather than not at all.
func (c *Controller) loadState() error {
	if c.statePath == "" {
		return nil
	}
	data, err := os.ReadFile(c.statePath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("load state file %s: %w", c.statePath, err)
	}
	var st controllerState
	if err := json.Unmarshal(data, &st); err != nil {
		return fmt.Errorf("load state file %s: %w", c.statePath, err)
	}
	if st.Spec != nil && st.Spec.Cell != nil && st.Spec.Cell.Name == c.cell {
		c.spec = st.Spec
	}
	for k, v := range st.Overrides {
		c.overrides[k] = v
	}
	for k, v := range st.Restarting {
		c.restarting[k] = v
	}
	return nil
}

// saveState writes the state file and reports a failure as an event: the
// change it records holds until the gateway restarts, and is lost then.
// c.mu must be held.
func (c *Controller) saveState() {
	if err := c.writeState(); err != nil {
		c.emit(api.Event{Type: api.EventError, Message: err.Error()})
	}
}

// writeState writes the state file through a temporary file, so a crash
// never leaves half a file; c.mu must be held.
func (c *Controller) writeState() error {
	if c.statePath == "" {
		return nil
	}
	data, err := json.Marshal(controllerState{Spec: c.spec, Overrides: c.overrides, Restarting: c.restarting})
	if err != nil {
		return fmt.Errorf("save state file %s: %w", c.statePath, err)
	}
	if err := os.MkdirAll(filepath.Dir(c.statePath), 0o755); err != nil {
		return fmt.Errorf("save state file %s: %w", c.statePath, err)
	}
	tmp := c.statePath + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("save state file %s: %w", c.statePath, err)
	}
	if err := os.Rename(tmp, c.statePath); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("save state file %s: %w", c.statePath, err)
	}
	return nil
}
