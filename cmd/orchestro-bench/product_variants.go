package main

// The variants part: the engine floor (product_floor.go) of orchestro's
// objects as they are and with parts of the design left out, beside the
// floor of compose's objects. It answers what each part of orchestro's
// topology costs the engine, which no change to orchestro's own code can
// take away: the keeper, the gateways' published admin ports, and a
// network per cell.

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"text/tabwriter"

	"github.com/orchestro/orchestro/runtime/engine"
)

// floorVariant is orchestro's objects with a part of the design left out.
type floorVariant struct {
	name string
	of   func(floorSpec) floorSpec
}

// floorVariants are measured in this order, the first going first in
// turn; each leaves its input unchanged.
var floorVariants = []floorVariant{
	{"orchestro's objects as they are", func(s floorSpec) floorSpec { return s }},
	{"without the keeper", withoutKeeper},
	{"without the gateways' published admin ports", withoutAdminPorts},
	{"without either", func(s floorSpec) floorSpec { return withoutAdminPorts(withoutKeeper(s)) }},
	{"with every cell on one network", oneNetwork},
	{"one network, without either", func(s floorSpec) floorSpec { return oneNetwork(withoutAdminPorts(withoutKeeper(s))) }},
}

// withoutKeeper leaves out the keeper container.
func withoutKeeper(s floorSpec) floorSpec {
	s.Containers = slices.DeleteFunc(slices.Clone(s.Containers), func(c floorContainer) bool { return c.Role == engine.RoleKeeper })
	return s
}

// withoutAdminPorts publishes no gateway's admin port.
func withoutAdminPorts(s floorSpec) floorSpec {
	s.Containers = slices.Clone(s.Containers)
	for i, c := range s.Containers {
		if _, ok := c.Published[c.AdminPort]; !ok || c.AdminPort == "" {
			continue
		}
		p := maps.Clone(c.Published)
		delete(p, c.AdminPort)
		if len(p) == 0 {
			p = nil
		}
		s.Containers[i].Published = p
	}
	return s
}

// oneNetwork puts every container that joins a network on the first one,
// and leaves the other networks out.
func oneNetwork(s floorSpec) floorSpec {
	if len(s.Networks) < 2 {
		return s
	}
	s.Networks = s.Networks[:1]
	s.Containers = slices.Clone(s.Containers)
	for i, c := range s.Containers {
		if len(c.Networks) > 0 {
			s.Containers[i].Networks = []string{s.Networks[0].Name}
		}
	}
	return s
}

// variantsReport is the variants part: the floor of each variant, and of
// compose's objects, per round.
type variantsReport struct {
	Rounds   int             `json:"rounds"`
	Variants []variantReport `json:"variants"`
}

// variantReport is one variant's floor.
type variantReport struct {
	Name        string         `json:"name"`
	Objects     floorFootprint `json:"objects"`
	UpSeconds   []float64      `json:"up_seconds"`
	DownSeconds []float64      `json:"down_seconds"`
	Up          *stat          `json:"up,omitempty"`
	Down        *stat          `json:"down,omitempty"`
}

// composeVariant names the row of compose's objects.
const composeVariant = "compose's objects"

// runVariants reads the objects of both projects (each brought up once,
// untimed, and down again), then measures the floor of every variant of
// orchestro's and of compose's, in rounds.
func (e *productEnv) runVariants(ctx context.Context) (*variantsReport, error) {
	specs := map[string]floorSpec{}
	for _, name := range []string{cliOrchestro, cliCompose} {
		tool, filter, down := e.orchestro, orchestroFilter(), orchestroDown
		if name == cliCompose {
			tool, filter, down = e.compose, composeFilter(), composeDown
		}
		e.progress("variants: %s up -d --wait, untimed, to read its objects", name)
		if _, err := tool.run(ctx, "up", "-d", "--wait"); err != nil {
			return nil, err
		}
		spec, err := e.floorOf(ctx, name, filter)
		if _, derr := tool.run(ctx, down...); err == nil {
			err = derr
		}
		if err != nil {
			return nil, err
		}
		specs[name] = spec
	}
	type row struct {
		name string
		spec floorSpec
	}
	var rows []row
	for _, v := range floorVariants {
		rows = append(rows, row{v.name, v.of(specs[cliOrchestro])})
	}
	rows = append(rows, row{composeVariant, specs[cliCompose]})
	r := &variantsReport{Rounds: e.o.rounds}
	for _, row := range rows {
		r.Variants = append(r.Variants, variantReport{Name: row.name, Objects: row.spec.footprint()})
	}
	for round := range e.o.rounds {
		for k := range rows {
			i := (k + round) % len(rows)
			up, err := floorUp(ctx, e.eng, rows[i].spec)
			if err != nil {
				return nil, fmt.Errorf("round %d: %s: %w", round+1, rows[i].name, err)
			}
			down, err := floorDown(ctx, e.eng, rows[i].spec)
			if err != nil {
				return nil, fmt.Errorf("round %d: %s: %w", round+1, rows[i].name, err)
			}
			v := &r.Variants[i]
			v.UpSeconds = append(v.UpSeconds, up.Seconds())
			v.DownSeconds = append(v.DownSeconds, down.Seconds())
			e.progress("round %d/%d  floor of %-45s up %s  down %s", round+1, e.o.rounds, rows[i].name, fmtSeconds(up.Seconds()), fmtSeconds(down.Seconds()))
		}
	}
	return r, nil
}

func (r *variantsReport) summarize() {
	for i := range r.Variants {
		v := &r.Variants[i]
		v.Up = summarizeValues(v.UpSeconds)
		v.Down = summarizeValues(v.DownSeconds)
	}
}

func (r *variantsReport) write(w io.Writer) {
	fmt.Fprintf(w, "\nEngine floor of variants of orchestro's objects: what each part of its topology costs the engine\n")
	fmt.Fprintf(w, "  each set of objects created and started, then stopped (%ds to exit) and removed, straight through the Engine API,\n", floorStopSeconds)
	fmt.Fprintf(w, "  all at once, every container running the replica image; %s, each set going first in turn; median [min – max]\n\n", plural(r.Rounds, "round"))
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "  objects\tcontainers\tnetworks\tpublished ports\tup\tdown")
	for _, v := range r.Variants {
		fmt.Fprintf(tw, "  %s\t%d\t%d\t%d\t%s\t%s\n", v.Name, v.Objects.Containers, v.Objects.Networks, v.Objects.Published,
			fmtStat(v.Up, fmtSeconds), fmtStat(v.Down, fmtSeconds))
	}
	_ = tw.Flush()
}
