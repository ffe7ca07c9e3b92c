// Package api holds the data shapes shared by a cell gateway's admin API,
// the orchestro command line and the dashboard: status, events, scale and
// restart requests. It has no behaviour and no Docker dependency, so the
// command line can depend on it without reaching the engine.
//
// The JSON shapes are a contract: `orchestro ps --json` and `orchestro
// events --json` print them. Fields are only ever added.
package api
