// Package kube turns a project into Kubernetes manifests: the pure part of
// `orchestro export kubernetes`. Manifests is a function of the project and
// its Options (the images, the gateway image, the namespace): it builds no
// image, reads no file and talks to no cluster.
//
// What a project becomes, in one namespace:
//
//   - per service, a Deployment of its replicas and a headless Service
//     named <project>-<cell>-<service>, whose DNS name resolves to the
//     ready pods: the cell's gateway finds the replicas through it, as it
//     does through tasks.<name> on a swarm (api.GatewaySpec.FindsByDNS).
//     A named volume is a PersistentVolumeClaim, an autoscaled service
//     has a HorizontalPodAutoscaler (autoscaling/v2) that owns its replica
//     count: the gateway scales nothing on this target.
//   - per cell, the gateway: a ConfigMap holding its api.GatewaySpec, a
//     Deployment of two replicas of the gateway image reading it, a
//     ClusterIP Service <project>-<cell>-gateway (the cell's entrance and
//     its replicas' way out), a headless Service <project>-<cell>-gateway-pods
//     over the gateway pods for the cells that use this one, a ClusterIP
//     Service named after the cell (see below), a PodDisruptionBudget, and
//     two NetworkPolicies.
//   - per project, the Namespace (unless Options.Namespace names an
//     existing one) and, when Options.Token is set, the Secret holding the
//     admin token.
//
// # Names inside a cell
//
// On the local and swarm targets a cell has its own network, on which a
// service is reached by its name ("db:5432") and the cell's gateway
// answers to the cell's name and to the names of the cells it uses
// ("users:8082"), so a replica's calls to another cell go out through its
// own gateway. A Kubernetes namespace has one set of names for every pod
// in it, so the export gives each name the one meaning that works from
// every cell where the name means something:
//
//   - a cell's name is a ClusterIP Service on the cell's port over every
//     gateway pod that forwards to the cell on that port: the cell's own
//     gateways, and the gateways of each cell that uses it, whose egress
//     listener for it has that port. The gateway pods carry the label
//     io.orchestro.reaches-<cell>: "true" for their own cell and for each
//     cell of their uses:, and the Service selects it. A replica calling
//     http://users:8082 thus always goes through a gateway that forwards
//     to users, though not always its own cell's: the Service may pick
//     the gateway of another cell that uses users, or users' own gateway,
//     and the call then shows in that gateway's metrics and access log
//     rather than in those of the caller's cell.
//   - a service whose name is unique in the project, and is no cell's,
//     has a second headless Service named after it, beside
//     <project>-<cell>-<service>. A name two cells' services share, or a
//     service named like a cell, has none: such a service is reached at
//     <project>-<cell>-<service>:<port>, and Manifests warns about each
//     environment variable whose value uses the name, with the name to
//     use (it does not rewrite values), and about each service named like
//     a cell.
//
// A name that cannot name a Service (a cell name starting with a digit), or
// that one of the prefixed Services has already, gets no Service either,
// and is warned about likewise; two objects of a kind that would share a
// name are an error. The unprefixed Services make two projects in one
// namespace (Options.Namespace) collide where their names do, which a
// warning says.
//
// # Traffic
//
// The NetworkPolicies are ingress-only. A cell's replicas accept traffic
// from the pods of their own cell: its gateway, and its other replicas,
// since services of a cell talk to each other directly on every target (a
// web front end and its database; the gateway is not in that path). A
// gateway accepts, on the cell's port, traffic from the gateways of the
// cells that list its cell under uses:; on the ports its replicas use
// (the cell's port, its listeners and its egress ports), traffic from its
// own replicas; on the port it forwards to a cell on (the cell's port for
// its own cell, the egress port for a used one), traffic from the
// replicas of every cell that may call that cell by its name, the cell
// itself and the cells that use it, since the Service of the name may
// send their calls to it; and on the cell's port, its listeners and the
// admin port, traffic from outside the namespace (an ingress controller,
// a monitoring system scraping /metrics; the admin API's writes need the
// token). Nothing else in the namespace reaches a cell: a replica reaches
// a gateway of another cell only on a port where that gateway forwards to
// a cell the replica's own cell may call.
package kube
