package runtime

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"golang.org/x/sync/errgroup"

	"github.com/orchestro/orchestro/cellspec"
	"github.com/orchestro/orchestro/runtime/api"
	"github.com/orchestro/orchestro/runtime/engine"
)

// upObserved is what Up finds of a project before it changes anything.
type upObserved struct {
	// Gateways are the project's gateway containers, by cell name.
	Gateways []observedGateway
	// Networks maps each network Up needs that exists, by name, to the
	// project its label names ("" for none): a network of the same name
	// may belong to something else.
	Networks map[string]string
	// Volumes holds the names of the volumes labelled with the project.
	Volumes map[string]bool
	// Keepers are the project's keeper containers in the engine's order,
	// newest first.
	Keepers []observedKeeper
}

// observedGateway is a gateway container and, when it answered, the spec
// it runs.
type observedGateway struct {
	gateway
	// SpecHash identifies the spec the gateway reported running; it is
	// empty when the gateway was not running or did not answer.
	SpecHash string
	// Stopping is set when the gateway answered that down has stopped
	// it (see api.GatewayStopping).
	Stopping bool
}

// observedKeeper is a keeper container.
type observedKeeper struct {
	ID    string
	State string
	Hash  string
}

// token returns the admin token the existing gateways share, or "" when
// there is none to keep.
func (o upObserved) token() string {
	for _, g := range o.Gateways {
		if g.token != "" {
			return g.token
		}
	}
	return ""
}

// statusProbeTimeout bounds the one question observation asks a running
// gateway: a gateway that is slow to answer is waited for later, by the
// plan.
const statusProbeTimeout = time.Second

// observeUp takes a snapshot of what Up manages in project p: its gateway
// containers and the spec each running one reports, the networks of the
// names it needs, its volumes and its keeper. It changes nothing. The
// four are looked up at once, and the running gateways asked at once.
func (c *Client) observeUp(ctx context.Context, p *cellspec.Project) (upObserved, error) {
	o := upObserved{Networks: map[string]string{}, Volumes: map[string]bool{}}
	var g errgroup.Group
	g.Go(func() error {
		gws, err := c.gateways(ctx, p.Name)
		if err != nil {
			return err
		}
		o.Gateways = make([]observedGateway, len(gws))
		var probes sync.WaitGroup
		for i, gw := range gws {
			o.Gateways[i] = observedGateway{gateway: gw}
			if gw.state != "running" {
				continue
			}
			probes.Go(func() {
				sctx, cancel := context.WithTimeout(ctx, statusProbeTimeout)
				defer cancel()
				if st, err := c.gwAdmin.status(sctx, p.Name, gw.cell); err == nil {
					o.Gateways[i].SpecHash = st.SpecHash
					o.Gateways[i].Stopping = st.Gateway == api.GatewayStopping
				}
			})
		}
		probes.Wait()
		return nil
	})

	g.Go(func() error {
		// By name, not by label: a network of a wanted name that another
		// project (or someone) owns must be found, to refuse it.
		names := []string{engine.MeshNetworkName(p.Name)}
		for _, cell := range p.Cells {
			names = append(names, engine.NetworkName(p.Name, cell.Name))
		}
		f := filters.NewArgs()
		for _, n := range names {
			f.Add("name", n)
		}
		nets, err := c.eng.NetworkList(ctx, network.ListOptions{Filters: f})
		if err != nil {
			return fmt.Errorf("list networks: %w", err)
		}
		for _, n := range nets {
			// The engine matches names by substring; keep exact ones.
			for _, want := range names {
				if n.Name == want {
					o.Networks[n.Name] = n.Labels[engine.LabelProject]
				}
			}
		}
		return nil
	})

	g.Go(func() error {
		vols, err := c.eng.VolumeList(ctx, volume.ListOptions{Filters: filters.NewArgs(filters.Arg("label", engine.LabelProject+"="+p.Name))})
		if err != nil {
			return fmt.Errorf("list volumes of project %s: %w", p.Name, err)
		}
		for _, v := range vols.Volumes {
			o.Volumes[v.Name] = true
		}
		return nil
	})

	g.Go(func() error {
		keepers, err := c.eng.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(
			filters.Arg("label", engine.LabelProject+"="+p.Name),
			filters.Arg("label", engine.LabelRole+"="+engine.RoleKeeper),
		)})
		if err != nil {
			return fmt.Errorf("list keeper of project %s: %w", p.Name, err)
		}
		for _, k := range keepers {
			o.Keepers = append(o.Keepers, observedKeeper{ID: k.ID, State: k.State, Hash: k.Labels[engine.LabelConfigHash]})
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return upObserved{}, err
	}
	return o, nil
}
