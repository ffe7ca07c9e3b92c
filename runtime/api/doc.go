// Package api is the contract between the orchestro command line and a
// cell's gateway. It holds the spec the command line hands a gateway
// (GatewaySpec, set through the environment variables EnvSpec, EnvToken and
// EnvProject, and replaced later through the admin API), the admin API's
// paths, and the data shapes the admin API, the command line and the
// dashboard share: status, events, scale and restart requests.
//
// It is data with almost no behaviour (GatewaySpec.Hash). It may import the
// standard library and package cellspec, and nothing that reaches the
// Docker engine, so the command line's front end can depend on it without
// linking the engine.
//
// The JSON shapes are a contract: `orchestro ps --json` and `orchestro
// events --json` print them. Fields are only ever added.
package api
