package main

import (
	"fmt"
	"net/netip"
	"sort"

	"github.com/mattfenwick/cyclonus/pkg/matcher"
	v1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

type Request struct {
	NetworkPolicies []*networkingv1.NetworkPolicy `json:"networkPolicies"`
	Namespaces      map[string]map[string]string  `json:"namespaces"`
	Queries         []Query                       `json:"queries"`
}

type Peer struct {
	Namespace string            `json:"namespace,omitempty"`
	PodLabels map[string]string `json:"podLabels,omitempty"`
	IP        string            `json:"ip,omitempty"`
}

type Query struct {
	From     Peer   `json:"from"`
	To       Peer   `json:"to"`
	Port     int    `json:"port"`
	PortName string `json:"portName,omitempty"`
	Protocol string `json:"protocol"`
}

// Direction is cyclonus's answer for one side: the targets (cyclonus merges
// the policies of one namespace that select pods with the same podSelector
// into one target) that select the pod and allow the connection, and those
// that select it and do not. No target selecting the pod means allowed.
type Direction struct {
	Allowed   bool     `json:"allowed"`
	AllowedBy []Target `json:"allowedBy"`
	DeniedBy  []Target `json:"deniedBy"`
}

type Target struct {
	Namespace   string               `json:"namespace"`
	PodSelector metav1.LabelSelector `json:"podSelector"`
	// Names of the NetworkPolicies merged into this target.
	Policies []string `json:"policies"`
}

type Result struct {
	Allowed bool      `json:"allowed"`
	Ingress Direction `json:"ingress"`
	Egress  Direction `json:"egress"`
}

type Response struct {
	Results []Result `json:"results"`
}

// Evaluate validates the request and asks cyclonus about each query.
func Evaluate(req Request) (resp Response, err error) {
	for i, np := range req.NetworkPolicies {
		if np == nil {
			return resp, fmt.Errorf("networkPolicies[%d]: null", i)
		}
		if np.Namespace == "" {
			return resp, fmt.Errorf("networkPolicies[%d] (%s): metadata.namespace is required", i, np.Name)
		}
		// The API server fills policyTypes in; the evaluator needs them explicit.
		if len(np.Spec.PolicyTypes) == 0 {
			return resp, fmt.Errorf("networkPolicies[%d] (%s/%s): spec.policyTypes is empty (set it explicitly)", i, np.Namespace, np.Name)
		}
	}
	traffic := make([]*matcher.Traffic, len(req.Queries))
	for i, q := range req.Queries {
		t, err := toTraffic(req.Namespaces, q)
		if err != nil {
			return resp, fmt.Errorf("queries[%d]: %w", i, err)
		}
		traffic[i] = t
	}

	// cyclonus panics on a policy it cannot interpret (e.g. a peer with both
	// ipBlock and a selector, a malformed CIDR): report it as an error.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("cyclonus: %v", r)
		}
	}()
	policy := matcher.BuildNetworkPolicies(true, req.NetworkPolicies)
	resp.Results = make([]Result, len(traffic))
	for i, t := range traffic {
		r := policy.IsTrafficAllowed(t)
		resp.Results[i] = Result{Allowed: r.IsAllowed(), Ingress: direction(r.Ingress), Egress: direction(r.Egress)}
	}
	return resp, nil
}

func toTraffic(namespaces map[string]map[string]string, q Query) (*matcher.Traffic, error) {
	from, err := toPeer(namespaces, q.From)
	if err != nil {
		return nil, fmt.Errorf("from: %w", err)
	}
	to, err := toPeer(namespaces, q.To)
	if err != nil {
		return nil, fmt.Errorf("to: %w", err)
	}
	if q.Port < 1 || q.Port > 65535 {
		return nil, fmt.Errorf("port: %d is not a port number (1-65535)", q.Port)
	}
	protocol := v1.Protocol(q.Protocol)
	switch protocol {
	case v1.ProtocolTCP, v1.ProtocolUDP, v1.ProtocolSCTP:
	default:
		return nil, fmt.Errorf("protocol: %q is not one of TCP, UDP, SCTP", q.Protocol)
	}
	return &matcher.Traffic{Source: from, Destination: to, ResolvedPort: q.Port, ResolvedPortName: q.PortName, Protocol: protocol}, nil
}

func toPeer(namespaces map[string]map[string]string, p Peer) (*matcher.TrafficPeer, error) {
	// cyclonus matches ipBlock peers against every peer's IP, pods' included.
	if p.IP == "" {
		return nil, fmt.Errorf("ip: required (of the pod, or of the address outside the cluster)")
	}
	if _, err := netip.ParseAddr(p.IP); err != nil {
		return nil, fmt.Errorf("ip: %w", err)
	}
	if p.Namespace == "" {
		if p.PodLabels != nil {
			return nil, fmt.Errorf("podLabels given without a namespace")
		}
		return &matcher.TrafficPeer{IP: p.IP}, nil
	}
	labels, ok := namespaces[p.Namespace]
	if !ok {
		return nil, fmt.Errorf("namespace %q is not in namespaces", p.Namespace)
	}
	podLabels := p.PodLabels
	if podLabels == nil {
		podLabels = map[string]string{}
	}
	return &matcher.TrafficPeer{
		IP:       p.IP,
		Internal: &matcher.InternalPeer{Namespace: p.Namespace, NamespaceLabels: labels, PodLabels: podLabels},
	}, nil
}

func direction(d *matcher.DirectionResult) Direction {
	return Direction{Allowed: d.IsAllowed(), AllowedBy: targets(d.AllowingTargets), DeniedBy: targets(d.DenyingTargets)}
}

func targets(ts []*matcher.Target) []Target {
	ts = append([]*matcher.Target(nil), ts...)
	sort.Slice(ts, func(i, j int) bool { return ts[i].GetPrimaryKey() < ts[j].GetPrimaryKey() })
	out := make([]Target, 0, len(ts))
	for _, t := range ts {
		names := make([]string, 0, len(t.SourceRules))
		for _, np := range t.SourceRules {
			names = append(names, np.Name)
		}
		sort.Strings(names)
		out = append(out, Target{Namespace: t.Namespace, PodSelector: t.PodSelector, Policies: names})
	}
	return out
}
