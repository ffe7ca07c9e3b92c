// Package swarm is the swarm deployment target: a project's cells as
// Docker Swarm services.
//
// Swarm does what a distributed engine does well: it schedules every
// service's replicas (tasks) over the nodes, restarts and replaces failed
// or unhealthy ones, and rolls updates (start-first, rolled back when they
// fail). The cell gateways do what they add: each cell's entrance, with
// balancing, retries, outlier ejection, metrics, access logs and flows.
// The gateways find replicas by DNS (tasks.<service>), never through
// Swarm's virtual IPs or routing mesh, which need the kernel's IPVS: every
// service uses DNS round robin (endpoint mode dnsrr) and every gateway
// publishes its ports in host mode on the node that runs it.
//
// Plan is a pure function from a project to its services and networks;
// Apply converges the swarm to it by label, as the local target does with
// containers; Remove takes a project down; Observe and Snapshot read the
// project back for status. Autoscaling is the single scaler task's (see
// the gateway package's swarm scaler): the command line and the scaler
// write a service's replica count only with the version they read.
package swarm
