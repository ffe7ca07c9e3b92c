package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/orchestro/orchestro/runtime/api"
)

// PsOptions are the inputs of `ps`.
type PsOptions struct {
	IO       *IOStreams
	Replicas bool
	JSON     bool
	global   *globalOptions
	f        *Factory
}

func newPsCmd(f *Factory, g *globalOptions, runF func(context.Context, *PsOptions) error) *cobra.Command {
	opts := &PsOptions{IO: f.IO, global: g, f: f}
	cmd := &cobra.Command{
		Use:   "ps",
		Short: "List the project's services, or replicas, and their health",
		Long: `List the project's services: cell, service, image, ready/desired
replicas, health and the URL the service answers at on this machine. With
--replicas, list every replica with its state, health, address, in-flight
requests and requests per second. When the cells have flows, a second
table lists them with their executions in flight, executions per second,
success percentage and 99th percentile duration (see also flows).

A project that is not running prints only the header. --json prints the
status shape documented in the README, replicas included:

  {"project": "demo", "cells": [{"cell": "shop", "gateway": "running", ...}]}`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runPs(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Replicas, "replicas", false, "list every replica")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the status as JSON")
	return cmd
}

func runPs(ctx context.Context, opts *PsOptions) error {
	ref, err := resolveProject(opts.f, opts.global)
	if err != nil {
		return err
	}
	be, err := opts.f.Backend(ctx)
	if err != nil {
		return err
	}
	raw, err := be.Status(ctx, ref.Name)
	if err != nil && !errors.Is(err, api.ErrNotRunning) {
		return fmt.Errorf("status of %s: %w", ref.Name, err)
	}
	st := normalizeStatus(raw, ref.Name)
	if opts.JSON {
		return writeStatusJSON(opts.IO.Out, st)
	}

	errPal := opts.IO.Palette(opts.IO.ColorErr())
	if len(st.Cells) == 0 {
		fmt.Fprintf(opts.IO.ErrOut, "project %s is not running\n", st.Project)
	} else if st.Target == api.TargetSwarm {
		fmt.Fprintf(opts.IO.ErrOut, "project %s runs on a swarm\n", st.Project)
	}
	for _, c := range st.Cells {
		switch c.Gateway {
		case gatewayDown:
			fmt.Fprintf(opts.IO.ErrOut, "%s cell %s: gateway down%s\n", errPal.Yellow("warning:"), c.Cell, colonIf(c.Error))
			continue
		case api.GatewayStopping:
			fmt.Fprintf(opts.IO.ErrOut, "%s cell %s: gateway stopping: down drained the cell and is removing it (if that down did not finish, up starts the cell again)\n", errPal.Yellow("warning:"), c.Cell)
			continue
		}
		// The table says crashloop and the exit code; the whole reason,
		// a start error the engine words at length, goes here.
		for _, s := range c.Services {
			if s.Health == healthCrashloop {
				fmt.Fprintf(opts.IO.ErrOut, "%s %s/%s: %s\n", errPal.Yellow("warning:"), c.Cell, s.Service, crashloopNote(c.Cell, s, opts.f.Now()))
			}
		}
	}
	t := statusTable{pal: opts.IO.Palette(opts.IO.ColorOut()), spec: ref.Spec}
	if opts.Replicas {
		return t.writeReplicas(opts.IO.Out, st)
	}
	if err := t.writeServices(opts.IO.Out, st); err != nil {
		return err
	}
	// Only what the gateways report: `flows` also lists a spec's flows
	// that are not running.
	flows := collectFlows(st, nil, "")
	if len(flows) == 0 {
		return nil
	}
	fmt.Fprintln(opts.IO.Out)
	return writePsFlows(opts.IO.Out, flows)
}

// colonIf returns ": s", or "" when s is empty.
func colonIf(s string) string {
	if s == "" {
		return ""
	}
	return ": " + s
}
