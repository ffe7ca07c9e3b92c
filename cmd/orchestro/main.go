package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/orchestro/orchestro/cli"
	"github.com/orchestro/orchestro/runtime"
	"github.com/orchestro/orchestro/runtime/gateway"
)

// Set by the linker: -X main.version=... -X main.commit=... -X main.date=...
var (
	version = ""
	commit  = ""
	date    = ""
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	f := cli.NewFactory(cli.BuildInfo{Version: version, Commit: commit, Date: date},
		func(ctx context.Context) (cli.Backend, error) { return runtime.NewClient(ctx) })
	f.Gateway = gateway.Main
	code := cli.Run(ctx, f, os.Args[1:])
	stop()
	os.Exit(code)
}
