import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { labels } from "../render/k8s";

/** One allowed flow inside the namespace: pods `from` may reach pods `to` on `ports`. */
export interface NamespaceAllow {
  /** Suffix of the NetworkPolicy name (`allow-<name>`). */
  readonly name: string;
  readonly from: Record<string, string>;
  readonly to: Record<string, string>;
  readonly ports: readonly number[];
}

export interface NamespaceArgs {
  /** Kubernetes name of the namespace (`knhk`). */
  readonly name: string;
  readonly quota: {
    readonly requestsCpu: string;
    readonly requestsMemory: string;
    readonly limitsCpu: string;
    readonly limitsMemory: string;
    readonly requestsStorage: string;
    readonly persistentVolumeClaims: number;
    readonly pods: number;
  };
  readonly limitRange: {
    readonly defaultRequestCpu: string;
    readonly defaultRequestMemory: string;
    readonly defaultLimitCpu: string;
    readonly defaultLimitMemory: string;
    readonly maxCpu: string;
    readonly maxMemory: string;
  };
  /** Namespace of Prometheus: may scrape `metricsPorts` of every pod. */
  readonly monitoringNamespace: string;
  readonly metricsPorts: readonly number[];
  /** Namespace of the ingress controller: may reach `ingressTo` on `ingressPorts`. */
  readonly ingressNamespace: string;
  readonly ingressTo: Record<string, string>;
  readonly ingressPorts: readonly number[];
  /** Explicit pod-to-pod allows inside the namespace (app -> Postgres, app -> Redis, ...). */
  readonly allows: readonly NamespaceAllow[];
  /** Egress to addresses outside the cluster network (Kubernetes API for the DCS, S3, Vault). */
  readonly externalEgress: readonly ExternalEgress[];
  /** Flows to or from another namespace or address range (e.g. the Vault server to PostgreSQL). Default: none. */
  readonly peerAllows?: readonly PeerAllow[];
}

/** Pods or addresses on the other side of the namespace boundary. */
export type Peer =
  | { readonly namespace: string; readonly podLabels?: Readonly<Record<string, string>> }
  | { readonly cidrs: readonly string[] };

/** A flow across the namespace boundary, allowed at this namespace's pods. */
export interface PeerAllow {
  /** Suffix of the NetworkPolicy name (`allow-<name>`). */
  readonly name: string;
  /** `ingress`: `peer` may reach `pods`; `egress`: `pods` may reach `peer`. */
  readonly direction: "ingress" | "egress";
  readonly pods: Record<string, string>;
  readonly peer: Peer;
  readonly ports: readonly number[];
}

/** The NetworkPolicy peer entries of a Peer (pure). */
export function networkPolicyPeers(peer: Peer): k8s.types.input.networking.v1.NetworkPolicyPeer[] {
  if ("cidrs" in peer) return peer.cidrs.map((cidr) => ({ ipBlock: { cidr } }));
  return [
    {
      namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": peer.namespace } },
      ...(peer.podLabels && Object.keys(peer.podLabels).length > 0 ? { podSelector: { matchLabels: { ...peer.podLabels } } } : {}),
    },
  ];
}

/** Pods `from` may open connections to any address outside the cluster on `ports`. */
export interface ExternalEgress {
  readonly name: string;
  readonly from: Record<string, string>;
  readonly ports: readonly number[];
}

const POD_SECURITY_LEVEL = "restricted";
const POD_SECURITY_VERSION = "latest";

/**
 * The `knhk` namespace: Pod Security `restricted` (enforce/audit/warn), ResourceQuota,
 * LimitRange, and a default-deny NetworkPolicy (ingress and egress) with explicit allows:
 * DNS egress, the configured pod-to-pod flows, Prometheus scraping, ingress to the API.
 */
export class Namespace extends pulumi.ComponentResource {
  /** The namespace name, resolved once the Namespace exists (use it to order dependants). */
  public readonly name: pulumi.Output<string>;
  public readonly namespace: k8s.core.v1.Namespace;

  constructor(name: string, args: NamespaceArgs, opts?: pulumi.ComponentResourceOptions) {
    super("knhk:kubernetes:Namespace", name, args, opts);
    const ns = args.name;
    const common = labels(ns, "namespace");

    this.namespace = new k8s.core.v1.Namespace(
      `${name}-namespace`,
      {
        metadata: {
          name: ns,
          labels: {
            ...common,
            "kubernetes.io/metadata.name": ns,
            "pod-security.kubernetes.io/enforce": POD_SECURITY_LEVEL,
            "pod-security.kubernetes.io/enforce-version": POD_SECURITY_VERSION,
            "pod-security.kubernetes.io/audit": POD_SECURITY_LEVEL,
            "pod-security.kubernetes.io/audit-version": POD_SECURITY_VERSION,
            "pod-security.kubernetes.io/warn": POD_SECURITY_LEVEL,
            "pod-security.kubernetes.io/warn-version": POD_SECURITY_VERSION,
          },
        },
      },
      { parent: this },
    );
    this.name = this.namespace.metadata.name;
    const childOpts = { parent: this, dependsOn: [this.namespace] };

    new k8s.core.v1.ResourceQuota(
      `${name}-quota`,
      {
        metadata: { name: `${ns}-quota`, namespace: ns, labels: common },
        spec: {
          hard: {
            "requests.cpu": args.quota.requestsCpu,
            "requests.memory": args.quota.requestsMemory,
            "limits.cpu": args.quota.limitsCpu,
            "limits.memory": args.quota.limitsMemory,
            "requests.storage": args.quota.requestsStorage,
            persistentvolumeclaims: String(args.quota.persistentVolumeClaims),
            pods: String(args.quota.pods),
          },
        },
      },
      childOpts,
    );

    new k8s.core.v1.LimitRange(
      `${name}-limits`,
      {
        metadata: { name: `${ns}-limits`, namespace: ns, labels: common },
        spec: {
          limits: [
            {
              type: "Container",
              defaultRequest: { cpu: args.limitRange.defaultRequestCpu, memory: args.limitRange.defaultRequestMemory },
              default: { cpu: args.limitRange.defaultLimitCpu, memory: args.limitRange.defaultLimitMemory },
              max: { cpu: args.limitRange.maxCpu, memory: args.limitRange.maxMemory },
            },
          ],
        },
      },
      childOpts,
    );

    const policy = (part: string, policyName: string, spec: k8s.types.input.networking.v1.NetworkPolicySpec) =>
      new k8s.networking.v1.NetworkPolicy(
        `${name}-${part}`,
        { metadata: { name: policyName, namespace: ns, labels: common }, spec },
        childOpts,
      );

    policy("default-deny", "default-deny", { podSelector: {}, policyTypes: ["Ingress", "Egress"] });

    policy("allow-dns", "allow-dns", {
      podSelector: {},
      policyTypes: ["Egress"],
      egress: [
        {
          to: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "kube-system" } }, podSelector: { matchLabels: { "k8s-app": "kube-dns" } } }],
          ports: [{ protocol: "UDP", port: 53 }, { protocol: "TCP", port: 53 }],
        },
      ],
    });

    policy("allow-monitoring", "allow-monitoring", {
      podSelector: {},
      policyTypes: ["Ingress"],
      ingress: [
        {
          from: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": args.monitoringNamespace } } }],
          ports: args.metricsPorts.map((port) => ({ protocol: "TCP", port })),
        },
      ],
    });

    policy("allow-ingress", "allow-ingress", {
      podSelector: { matchLabels: args.ingressTo },
      policyTypes: ["Ingress"],
      ingress: [
        {
          from: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": args.ingressNamespace } } }],
          ports: args.ingressPorts.map((port) => ({ protocol: "TCP", port })),
        },
      ],
    });

    // Each allow needs both halves under default-deny: egress from the source, ingress at the target.
    for (const allow of args.allows) {
      const ports = allow.ports.map((port) => ({ protocol: "TCP", port }));
      policy(`allow-${allow.name}-egress`, `allow-${allow.name}-egress`, {
        podSelector: { matchLabels: allow.from },
        policyTypes: ["Egress"],
        egress: [{ to: [{ podSelector: { matchLabels: allow.to } }], ports }],
      });
      policy(`allow-${allow.name}-ingress`, `allow-${allow.name}-ingress`, {
        podSelector: { matchLabels: allow.to },
        policyTypes: ["Ingress"],
        ingress: [{ from: [{ podSelector: { matchLabels: allow.from } }], ports }],
      });
    }

    for (const egress of args.externalEgress) {
      policy(`allow-${egress.name}-egress`, `allow-${egress.name}-egress`, {
        podSelector: { matchLabels: egress.from },
        policyTypes: ["Egress"],
        egress: [{ to: [{ ipBlock: { cidr: "0.0.0.0/0" } }], ports: egress.ports.map((port) => ({ protocol: "TCP", port })) }],
      });
    }

    for (const allow of args.peerAllows ?? []) {
      const ports = allow.ports.map((port) => ({ protocol: "TCP", port }));
      const peers = networkPolicyPeers(allow.peer);
      policy(
        `allow-${allow.name}`,
        `allow-${allow.name}`,
        allow.direction === "ingress"
          ? { podSelector: { matchLabels: allow.pods }, policyTypes: ["Ingress"], ingress: [{ from: peers, ports }] }
          : { podSelector: { matchLabels: allow.pods }, policyTypes: ["Egress"], egress: [{ to: peers, ports }] },
      );
    }

    this.registerOutputs({ name: this.name });
  }
}
