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
//     over the gateway pods for the cells that use this one, a
//     PodDisruptionBudget, and two NetworkPolicies.
//   - per project, the Namespace (unless Options.Namespace names an
//     existing one) and, when Options.Token is set, the Secret holding the
//     admin token.
//
// # Names inside a cell
//
// On the local and swarm targets a cell has its own network, on which a
// service is reached by its name ("db:5432") and the cell's gateway
// answers to the names of the cells it uses ("users:8082"), so a replica's
// calls to another cell go out through its own gateway. A Kubernetes
// namespace has one set of names for every pod in it, so neither can be
// given per cell: a Service named "users" would be the same for every
// cell, and a replica calling it would bypass its own gateway (and be
// refused by the NetworkPolicies, which admit other cells' traffic only
// from their gateways). No object is therefore named after a cell or a
// bare service. On Kubernetes a replica reaches
//
//   - another service of its cell at <project>-<cell>-<service>:<port>
//     (the headless Service, whose name resolves to the pods, any port);
//   - its own cell, and every cell in its uses:, through its own gateway
//     at <project>-<cell>-gateway:<port of that cell>: the gateway Service
//     carries the egress ports of the used cells, as the gateway container
//     listens on them.
//
// Manifests warns about each environment variable whose value reaches a
// service or a cell by the name the cell's network gives it, with the name
// to use instead; it does not rewrite values.
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
// own replicas; and on the cell's port, its listeners and the admin port,
// traffic from outside the namespace (an ingress controller, a monitoring
// system scraping /metrics; the admin API's writes need the token). Nothing
// else in the namespace reaches a cell.
package kube
