// Command orchestro-bench measures the cell gateway's request path against
// nginx, HAProxy and direct access to the same replicas, with wrk, on
// 127.0.0.1.
//
// One run starts three Go backends and every target as child processes,
// then measures each target at each connection count in rounds whose
// target order rotates, so that drift on a shared machine hits every
// target alike. Ratios between targets are paired within a round and
// reported as the median and range over rounds. Every number it prints is
// measured in that run.
//
// The backends and the gateway are this same binary re-executed with a
// hidden subcommand, so each runs on a Go scheduler of its own, and the
// gateway runs exactly the product's data plane (gateway.NewDataPlane
// served by proxy.Server; the gateway-nethttp target serves it with a plain
// http.Server instead). nginx, HAProxy and wrk are Debian's packages; the
// tool writes their configurations into a temporary directory, runs them
// in the foreground and stops them when it ends, also on Ctrl-C.
//
// The tool is Linux-only in practice: it reads /proc for CPU time and peak
// RSS, and drives nginx and HAProxy as Debian packages them.
package main
