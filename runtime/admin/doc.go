// Package admin is a cell gateway's admin API: the HTTP server the gateway
// runs on its admin port, the client the command line and the dashboard
// use to reach it, and the event bus through which the gateway's
// controller publishes what it does.
//
// The server never decides anything itself. It authenticates, decodes and
// validates requests, hands them to a Cell (implemented by the controller)
// or, for flow executions, to Executions (the gateway's journal), and maps
// their errors to status codes: a *StatusError carries its own code (see
// BadRequest, NotFound and Conflict), anything else is a 500. Every
// non-2xx answer is an api.Error JSON body, which the Client turns back
// into an error carrying the same code and message.
//
// Reading calls (status, events, executions, metrics, health) are open,
// because the admin port binds 127.0.0.1; calls that change the cell, and
// the retry of an execution, need the project's token as
// "Authorization: Bearer <token>".
package admin
