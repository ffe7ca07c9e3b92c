package runtime

import (
	"fmt"
	"slices"
	"strings"

	"github.com/orchestro/orchestro/cellspec"
	"github.com/orchestro/orchestro/runtime/api"
	"github.com/orchestro/orchestro/runtime/engine"
)

// defaultAdminPort is the container port of a gateway's admin API, moved
// down when a cell of the project uses it as a data port.
const defaultAdminPort = 7700

// upDesired is what Up wants the engine to hold once it is done: a gateway
// per cell with its spec, the networks and named volumes they need, and
// the keeper. It is computed from the project and the images built for it.
type upDesired struct {
	Project string
	// Image is the gateway image; the keeper runs it too.
	Image string
	// Token is the project's admin token, shared by its gateways.
	Token string
	// Gateways holds the spec of each cell's gateway, in the project's
	// order, which is the order they are converged in.
	Gateways []*api.GatewaySpec
	// Volumes are the engine names of the project's named volumes, in the
	// order the services first mention them.
	Volumes []string
	// RemoveOrphans asks for the gateways of cells that left the project
	// to be removed rather than only reported.
	RemoveOrphans bool
	// Mesh holds the cells whose gateways join the mesh (see meshCells).
	Mesh map[string]bool
}

// desiredUp derives what Up wants from the project, the gateway image, the
// images of its services (by cell, then service) and the token.
func desiredUp(p *cellspec.Project, gwImage string, images map[string]map[string]api.ServiceImage, token string, removeOrphans bool) upDesired {
	d := upDesired{Project: p.Name, Image: gwImage, Token: token, RemoveOrphans: removeOrphans, Mesh: meshCells(p)}
	adminPort := pickAdminPort(p)
	seen := map[string]bool{}
	for _, cell := range p.Cells {
		spec := &api.GatewaySpec{Project: p.Name, Cell: cell, Images: images[cell.Name], Peers: map[string]string{}, AdminPort: adminPort}
		for _, u := range cell.Uses {
			spec.Peers[u] = fmt.Sprintf("%s:%d", engine.GatewayName(p.Name, u), p.Cell(u).Gateway.Port)
		}
		d.Gateways = append(d.Gateways, spec)
		for _, v := range []string{journalVolume(spec), accessLogVolume(spec)} {
			if v != "" {
				d.Volumes = append(d.Volumes, v)
			}
		}
		for _, name := range cell.ServiceNames() {
			for _, v := range cell.Services[name].Volumes {
				if v.Type != cellspec.VolumeNamed || seen[v.Source] {
					continue
				}
				seen[v.Source] = true
				d.Volumes = append(d.Volumes, engine.VolumeName(p.Name, v.Source))
			}
		}
	}
	return d
}

// meshCells returns the cells whose gateways join the project's mesh:
// those that use another cell and those another cell uses. The mesh only
// carries calls from one cell's gateway to another's, so a cell in no
// uses: has no business on it, and a project whose cells use none has no
// mesh: every network and every endpoint on one costs the engine firewall
// rules to set up and to tear down.
func meshCells(p *cellspec.Project) map[string]bool {
	mesh := map[string]bool{}
	for _, c := range p.Cells {
		for _, u := range c.Uses {
			mesh[c.Name], mesh[u] = true, true
		}
	}
	return mesh
}

// pickAdminPort returns a container port for the admin API that no cell of
// the project uses as its data, listener or egress port.
func pickAdminPort(p *cellspec.Project) int {
	used := map[int]bool{}
	for _, c := range p.Cells {
		used[c.Gateway.Port] = true
		for _, l := range c.Gateway.Listeners {
			used[l.Port] = true
		}
	}
	port := defaultAdminPort
	for used[port] {
		port--
	}
	return port
}

// gatewayHash identifies the parts of a gateway container that cannot
// change without recreating it. The cell spec is not among them: a new
// spec goes to the running gateway through its admin API.
func gatewayHash(spec *api.GatewaySpec, img string) string {
	return engine.ConfigHash(struct {
		Image     string
		Port      int
		AdminPort int
		Uses      []string
		Peers     map[string]string
		// Journal is the journal volume the container mounts, for a
		// cell with flows: gaining or losing flows recreates the
		// gateway. Left out when empty, so the hashes of cells without
		// flows are what they were before journals.
		Journal string `json:",omitempty"`
		// Listeners are published ports: a change recreates the
		// gateway. Left out when empty, as Journal.
		Listeners []cellspec.Listener `json:",omitempty"`
		// AccessLog is where the access log goes and how, which the
		// gateway sets up when it starts, and AccessLogVolume the volume
		// it mounts for it.
		AccessLog       cellspec.AccessLog
		AccessLogVolume string `json:",omitempty"`
		// Procs is set when the gateway starts. Left out when 0 (the
		// default), as Journal.
		Procs int `json:",omitempty"`
	}{img, spec.Cell.Gateway.Port, spec.AdminPort, spec.Cell.Uses, spec.Peers, journalVolume(spec), spec.Cell.Gateway.Listeners,
		spec.Cell.Gateway.AccessLogSettings(), accessLogVolume(spec), spec.Cell.Gateway.Procs})
}

// accessLogVolume is the volume of a cell's access log files, or "" for a
// cell whose access log goes to stdout or nowhere.
func accessLogVolume(spec *api.GatewaySpec) string {
	if spec.Cell.Gateway.AccessLogSettings().To != cellspec.AccessLogFile {
		return ""
	}
	return engine.AccessLogVolumeName(spec.Project, spec.Cell.Name)
}

// journalVolume is the journal volume a cell's gateway mounts, or "" for a
// cell without flows.
func journalVolume(spec *api.GatewaySpec) string {
	if len(spec.Cell.Flows) == 0 {
		return ""
	}
	return engine.JournalVolumeName(spec.Project, spec.Cell.Name)
}

// keeperHash is the config hash of the keeper: it only runs the gateway
// image.
func keeperHash(img string) string { return engine.ConfigHash(img) }

// upOpKind is the kind of an operation of an Up plan.
type upOpKind int

// Operations of an Up plan. Each is one Docker call or one admin API call,
// except the removal of an orphan cell, which is Down's removal of a cell.
const (
	// upWarnOrphan reports a gateway whose cell left the project, which is
	// kept because --remove-orphans was not given.
	upWarnOrphan upOpKind = iota + 1
	// upRemoveOrphan drains and removes the gateway and replicas of a cell
	// that left the project.
	upRemoveOrphan
	// upCreateNetwork creates the mesh or a cell's network.
	upCreateNetwork
	// upCreateVolume creates a named volume with the project's label, so
	// replicas do not create it unlabelled.
	upCreateVolume
	// upRemoveKeeper removes a keeper that runs another gateway image.
	upRemoveKeeper
	// upCreateKeeper creates the project's keeper.
	upCreateKeeper
	// upStartKeeper starts the keeper.
	upStartKeeper
	// upRemoveGateway removes a gateway container so that it is created
	// anew: its image, ports or peers changed.
	upRemoveGateway
	// upCreateGateway creates a gateway container on its cell's network,
	// with its spec and the token in its environment.
	upCreateGateway
	// upConnectGateway attaches a gateway to the mesh: a new one whose
	// cell uses or is used by another, or one whose cell has begun to.
	upConnectGateway
	// upStartGateway starts a gateway container.
	upStartGateway
	// upWaitGateway waits until a gateway's admin API answers.
	upWaitGateway
	// upUpdateGateway hands a running gateway its cell's new spec.
	upUpdateGateway
	// upKeepGateway leaves an up-to-date gateway alone; it exists so that
	// every cell's gateway is reported, changed or not.
	upKeepGateway
)

// gatewayStep reports whether operations of the kind belong to the one
// progress step of their cell's gateway.
func (k upOpKind) gatewayStep() bool {
	return k >= upRemoveGateway && k <= upKeepGateway
}

// upPhase orders the operations of an Up plan: every operation of a
// phase is done before any operation of the next one starts.
type upPhase int

// Phases of an Up plan.
const (
	// upPhaseClear removes what stands in the way: orphan cells and the
	// gateways to be created anew, which may hold a port a new gateway
	// publishes.
	upPhaseClear upPhase = iota
	// upPhaseShared creates what the gateways share: the mesh and the
	// volumes.
	upPhaseShared
	// upPhaseGateways converges every cell: its network, then its
	// gateway.
	upPhaseGateways
	// upPhaseKeeper converges the keeper, once the gateways run: the
	// engine starts it while the gateways start their replicas, rather
	// than along with the gateways, which the replicas wait for; and Up
	// waits for the replicas meanwhile (see startRoll).
	upPhaseKeeper
)

// upOp is one operation of an Up plan.
type upOp struct {
	Kind upOpKind
	// Phase is the phase the operation belongs to.
	Phase upPhase
	// Chain names the sequence the operation is part of within its phase:
	// the operations of a chain are done in order, one after the other,
	// and the chains of a phase (each operation without one being a chain
	// of its own) at once.
	Chain string
	// Cell is the cell of a gateway, orphan or cell network operation.
	Cell string
	// Name is the object acted on: a network, volume or container name.
	Name string
	// ID is the container acted on, when it exists before the plan runs;
	// containers the plan creates are named.
	ID string
	// Labels are the labels of a network or volume to create.
	Labels map[string]string
	// Internal makes a network to create internal: the engine gives it
	// no route out and no NAT, and sets up fewer firewall rules, so it
	// is quicker to create and to remove.
	Internal bool
	// Network is the network a gateway is connected to.
	Network string
	// Spec is the spec a gateway is created with or given.
	Spec *api.GatewaySpec
	// Hash is the config-hash label of a container to create.
	Hash string
	// Port is set on the wait for a gateway this plan creates: the host
	// port it will serve on, which progress announces while it starts.
	Port int
	// IfChanged makes a spec update conditional on the gateway reporting
	// another spec. It is set when the spec a gateway runs could not be read
	// when the plan was made (it was stopped, or did not answer): only the
	// gateway knows it, since it keeps a spec it was given in its own state.
	IfChanged bool
	// Orphan is the gateway of a cell that left the project.
	Orphan gateway
	// Reason says why, for people.
	Reason string
}

// ref is how the executor names the container of an operation: its ID
// when it existed before the plan, else its name.
func (op upOp) ref() string {
	if op.ID != "" {
		return op.ID
	}
	return op.Name
}

// String renders the operation on one line.
func (op upOp) String() string {
	var s string
	switch op.Kind {
	case upWarnOrphan:
		s = "keep orphan cell " + op.Cell
	case upRemoveOrphan:
		s = "remove orphan cell " + op.Cell
	case upCreateNetwork:
		s = "create network " + op.Name
	case upCreateVolume:
		s = "create volume " + op.Name
	case upRemoveKeeper:
		s = "remove keeper " + op.Name
	case upCreateKeeper:
		s = "create keeper " + op.Name
	case upStartKeeper:
		s = "start keeper " + op.Name
	case upRemoveGateway:
		s = "remove gateway " + op.Name
	case upCreateGateway:
		s = "create gateway " + op.Name
	case upConnectGateway:
		s = "connect gateway " + op.Name + " to network " + op.Network
	case upStartGateway:
		s = "start gateway " + op.Name
	case upWaitGateway:
		s = "wait for gateway " + op.Name
		if op.Port > 0 {
			s += fmt.Sprintf(" to start on 127.0.0.1:%d", op.Port)
		}
	case upUpdateGateway:
		s = "update gateway " + op.Name
		if op.IfChanged {
			s += " if its spec changed"
		}
	case upKeepGateway:
		s = "keep gateway " + op.Name
	default:
		s = fmt.Sprintf("operation %d on %s", op.Kind, op.Name)
	}
	if op.Reason != "" {
		s += ": " + op.Reason
	}
	return s
}

// upPlan is the list of operations that takes the engine from what was
// observed to what Up wants, by phase (see upOp.Phase and upOp.Chain).
// Carrying it out is mechanical.
type upPlan struct {
	Project string
	// Image is the gateway image, which new gateways and keepers run.
	Image string
	// Token is the admin token new gateways are given.
	Token string
	// Ops are in the order of their phases, and within a chain in the
	// order they are done.
	Ops []upOp
}

// String renders one line per operation, so planner tests compare text:
// the operations of a chain after its name, and a line "then" between
// two phases.
func (p upPlan) String() string {
	var b strings.Builder
	for i, op := range p.Ops {
		if i > 0 && op.Phase != p.Ops[i-1].Phase {
			b.WriteString("then\n")
		}
		if op.Chain != "" {
			b.WriteString(op.Chain + ": ")
		}
		b.WriteString(op.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// phases splits the operations into their phases, in order, and each
// phase into its chains, in the order they first appear.
func (p upPlan) phases() [][][]upOp {
	var out [][][]upOp
	chain := map[string]int{}
	for i, op := range p.Ops {
		if i == 0 || op.Phase != p.Ops[i-1].Phase {
			out = append(out, nil)
			clear(chain)
		}
		cur := &out[len(out)-1]
		if j, ok := chain[op.Chain]; ok && op.Chain != "" {
			(*cur)[j] = append((*cur)[j], op)
			continue
		}
		chain[op.Chain] = len(*cur)
		*cur = append(*cur, []upOp{op})
	}
	return out
}

// split cuts the plan before the first operation of phase from on: the
// operations of the earlier phases, and the rest.
func (p upPlan) split(from upPhase) (before, rest upPlan) {
	i := slices.IndexFunc(p.Ops, func(op upOp) bool { return op.Phase >= from })
	if i < 0 {
		i = len(p.Ops)
	}
	before, rest = p, p
	before.Ops, rest.Ops = p.Ops[:i:i], p.Ops[i:]
	return before, rest
}

// planUp computes the operations that take the observed project to the
// desired one. It is a pure function of its inputs.
//
// The phases are Up's order. Orphans, and the gateways to be created
// anew, go first, at once: one may hold a port another cell's new gateway
// publishes. Then the mesh and the volumes, which gateways share, are
// created, at once. Then every cell converges, each a chain of its own,
// all at once: a cell's chain creates its network, then converges its
// gateway, which needs no other cell's (it reaches the cells it uses by
// name, when a request comes). The keeper comes last, when the gateways
// it watches run. A network of a wanted name that belongs to something
// else stops the plan before anything is changed.
func planUp(d upDesired, o upObserved) (upPlan, error) {
	p := upPlan{Project: d.Project, Image: d.Image, Token: d.Token}
	var cells []string
	for _, spec := range d.Gateways {
		cells = append(cells, spec.Cell.Name)
	}
	nets, err := planNetworks(d.Project, cells, len(d.Mesh) > 0, o)
	if err != nil {
		return upPlan{}, err
	}
	// The mesh is shared; a cell's network begins its cell's chain.
	var shared []upOp
	cellNets := map[string]upOp{}
	for _, op := range nets {
		if op.Cell == "" {
			shared = append(shared, op)
		} else {
			op.Chain = op.Cell
			cellNets[op.Cell] = op
		}
	}

	wanted := map[string]bool{}
	for _, spec := range d.Gateways {
		wanted[spec.Cell.Name] = true
	}
	var clearOps, gateways, keeper []upOp
	for _, g := range o.Gateways {
		switch {
		case wanted[g.cell]:
		case d.RemoveOrphans:
			clearOps = append(clearOps, upOp{Kind: upRemoveOrphan, Cell: g.cell, Name: engine.GatewayName(d.Project, g.cell), ID: g.id, Orphan: g.gateway, Reason: "not in the spec"})
		default:
			clearOps = append(clearOps, upOp{Kind: upWarnOrphan, Cell: g.cell, Name: engine.GatewayName(d.Project, g.cell), ID: g.id, Reason: "not in the spec, and --remove-orphans not given"})
		}
	}

	for _, v := range d.Volumes {
		if !o.Volumes[v] {
			shared = append(shared, upOp{Kind: upCreateVolume, Name: v, Labels: map[string]string{engine.LabelProject: d.Project}})
		}
	}
	for _, op := range planKeeper(d, o.Keepers) {
		op.Chain = "keeper"
		keeper = append(keeper, op)
	}

	current := map[string]observedGateway{}
	for _, g := range o.Gateways {
		current[g.cell] = g
	}
	for _, spec := range d.Gateways {
		cell := spec.Cell.Name
		if op, ok := cellNets[cell]; ok {
			gateways = append(gateways, op)
		}
		cur, ok := current[cell]
		for _, op := range planGateway(d, spec, cur, ok) {
			if op.Kind == upRemoveGateway {
				clearOps = append(clearOps, op)
				continue
			}
			op.Chain = cell
			gateways = append(gateways, op)
		}
	}
	for _, ph := range []struct {
		phase upPhase
		ops   []upOp
	}{{upPhaseClear, clearOps}, {upPhaseShared, shared}, {upPhaseGateways, gateways}, {upPhaseKeeper, keeper}} {
		for _, op := range ph.ops {
			op.Phase = ph.phase
			p.Ops = append(p.Ops, op)
		}
	}
	return p, nil
}

// planNetworks returns the creation of the networks of project and its
// cells that o lacks, the mesh first when it is wanted, each a chain of
// its own. Up runs them while the images build, since networks need none
// and the engine creates them one at a time; planUp places them in its
// phases. A network of a wanted name that belongs to something else is an
// error, before anything is changed.
func planNetworks(project string, cells []string, mesh bool, o upObserved) ([]upOp, error) {
	var ops []upOp
	if mesh {
		ops = append(ops, meshOp(project))
	}
	for _, cell := range cells {
		ops = append(ops, cellNetworkOp(project, cell))
	}
	var missing []upOp
	for _, op := range ops {
		owner, ok := o.Networks[op.Name]
		switch {
		case ok && owner != project:
			return nil, fmt.Errorf("network %s exists but does not belong to project %s; remove it or choose another project name (-p)", op.Name, project)
		case !ok:
			missing = append(missing, op)
		}
	}
	return missing, nil
}

// meshOp creates the mesh. Only gateways are on it, and they talk to
// nothing outside the project through it: their way out is their cell's
// network.
func meshOp(project string) upOp {
	return upOp{Kind: upCreateNetwork, Name: engine.MeshNetworkName(project), Labels: map[string]string{engine.LabelProject: project}, Internal: true}
}

// cellNetworkOp creates the network of a cell: its gateway and replicas.
func cellNetworkOp(project, cell string) upOp {
	return upOp{Kind: upCreateNetwork, Cell: cell, Name: engine.NetworkName(project, cell), Labels: map[string]string{engine.LabelProject: project, engine.LabelCell: cell}}
}

// planKeeper keeps the first keeper, in the engine's order, that runs the
// gateway image, and removes those before it that run another; with none
// left it creates one. The keeper restarts gateways that were killed,
// which Docker does not do after `docker kill`.
func planKeeper(d upDesired, keepers []observedKeeper) []upOp {
	name := engine.KeeperName(d.Project)
	hash := keeperHash(d.Image)
	var ops []upOp
	for _, k := range keepers {
		if k.Hash != hash {
			ops = append(ops, upOp{Kind: upRemoveKeeper, Name: name, ID: k.ID, Reason: "gateway image changed"})
			continue
		}
		if k.State != "running" {
			ops = append(ops, upOp{Kind: upStartKeeper, Name: name, ID: k.ID, Reason: k.State})
		}
		return ops
	}
	return append(ops,
		upOp{Kind: upCreateKeeper, Name: name, Hash: hash},
		upOp{Kind: upStartKeeper, Name: name})
}

// planGateway converges the gateway of one cell. A gateway whose container
// config changed is recreated, and a new one gets its spec at creation; an
// existing one is started if need be and handed the spec when it runs
// another.
func planGateway(d upDesired, spec *api.GatewaySpec, cur observedGateway, exists bool) []upOp {
	cell := spec.Cell.Name
	name := engine.GatewayName(d.Project, cell)
	op := func(kind upOpKind) upOp { return upOp{Kind: kind, Cell: cell, Name: name, ID: cur.id} }
	hash := gatewayHash(spec, d.Image)
	var ops []upOp
	switch {
	case exists && cur.hash != hash:
		remove := op(upRemoveGateway)
		remove.Reason = "gateway image or ports changed"
		ops = append(ops, remove)
		exists = false
	case exists && cur.Stopping:
		// A down stopped it and did not finish: it will create no
		// replica again. A new one adopts the replicas left.
		remove := op(upRemoveGateway)
		remove.Reason = "stopped by a down that did not finish"
		ops = append(ops, remove)
		exists = false
	}
	if !exists {
		fresh := func(kind upOpKind) upOp { return upOp{Kind: kind, Cell: cell, Name: name} }
		create := fresh(upCreateGateway)
		create.Spec, create.Hash = spec, hash
		ops = append(ops, create)
		if d.Mesh[cell] {
			connect := fresh(upConnectGateway)
			connect.Network = engine.MeshNetworkName(d.Project)
			ops = append(ops, connect)
		}
		wait := fresh(upWaitGateway)
		wait.Port = spec.Cell.Gateway.Port
		return append(ops, fresh(upStartGateway), wait)
	}
	if d.Mesh[cell] && !cur.onMesh {
		// Another cell has begun to use this one: its gateway is
		// reached over the mesh from now on. Joining a network needs
		// no new container, so the gateway keeps serving.
		connect := op(upConnectGateway)
		connect.Network = engine.MeshNetworkName(d.Project)
		connect.Reason = "a cell uses it or it uses one"
		ops = append(ops, connect)
	}
	update := op(upUpdateGateway)
	update.Spec = spec
	switch {
	case cur.state != "running":
		start := op(upStartGateway)
		start.Reason = cur.state
		update.IfChanged, update.Reason = true, "its spec is unknown while it is "+cur.state
		return append(ops, start, op(upWaitGateway), update)
	case cur.SpecHash == "":
		update.IfChanged, update.Reason = true, "it did not answer"
		return append(ops, op(upWaitGateway), update)
	case cur.SpecHash != spec.Hash():
		update.Reason = "spec changed"
		return append(ops, update)
	}
	keep := op(upKeepGateway)
	keep.Reason = "up to date"
	return append(ops, keep)
}
