// Package metrics exposes Lifeline's Prometheus metrics.
package metrics

import (
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/lifelinehq/lifeline/chat"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics implements chat.Metrics on a private Prometheus registry.
type Metrics struct {
	reg          *prometheus.Registry
	conns        *prometheus.GaugeVec
	connsTotal   *prometheus.CounterVec
	frames       *prometheus.CounterVec
	messages     prometheus.Counter
	ackLatency   prometheus.Histogram
	storeSync    *prometheus.HistogramVec
	syncLog      prometheus.Observer // storeSync's children, looked up once
	syncTree     prometheus.Observer
	errors       *prometheus.CounterVec
	queue        prometheus.Gauge
	slow         prometheus.Counter
	httpRejected *prometheus.CounterVec
}

var _ chat.Metrics = (*Metrics)(nil)

// New registers Lifeline's metrics and the Go runtime's on a new registry.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		conns: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "lifeline_connections", Help: "Open WebSocket connections.",
		}, []string{"kind"}),
		connsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lifeline_connections_total", Help: "WebSocket connections accepted.",
		}, []string{"kind"}),
		frames: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lifeline_frames_received_total", Help: "Valid frames received, by type.",
		}, []string{"kind", "type"}),
		messages: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lifeline_messages_stored_total", Help: "Chat messages durably stored and acknowledged.",
		}),
		ackLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "lifeline_ack_latency_seconds", Help: "Time from a message frame's arrival to its durable ack.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1, 2.5},
		}),
		storeSync: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "lifeline_store_sync_seconds", Help: "Durable writes of the embedded store: kind log (a group of appends, write and fdatasync), tree (a B+tree transaction with its fsyncs).",
			Buckets: []float64{.0001, .00025, .0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1},
		}, []string{"kind"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lifeline_error_frames_total", Help: "Error frames sent, by code.",
		}, []string{"code"}),
		queue: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "lifeline_queue_length", Help: "Conversations waiting for an agent.",
		}),
		slow: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lifeline_slow_consumers_total", Help: "Sockets closed because they could not keep up.",
		}),
		httpRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lifeline_handshakes_rejected_total", Help: "WebSocket handshakes refused, by reason.",
		}, []string{"reason"}),
	}
	m.syncLog, m.syncTree = m.storeSync.WithLabelValues("log"), m.storeSync.WithLabelValues("tree")
	m.reg.MustRegister(m.conns, m.connsTotal, m.frames, m.messages, m.ackLatency, m.errors, m.queue, m.slow, m.httpRejected,
		collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(schedLatencies)), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry is where other packages register their own collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// ConnOpened counts a new socket.
func (m *Metrics) ConnOpened(kind string) {
	m.conns.WithLabelValues(kind).Inc()
	m.connsTotal.WithLabelValues(kind).Inc()
}

// ConnClosed counts a closed socket.
func (m *Metrics) ConnClosed(kind string) { m.conns.WithLabelValues(kind).Dec() }

// Frame counts a valid frame.
func (m *Metrics) Frame(kind, typ string) { m.frames.WithLabelValues(kind, typ).Inc() }

// MessageStored counts a durable message and its ack latency.
func (m *Metrics) MessageStored(d time.Duration) {
	m.messages.Inc()
	m.ackLatency.Observe(d.Seconds())
}

// ErrorSent counts an error frame.
func (m *Metrics) ErrorSent(code string) { m.errors.WithLabelValues(code).Inc() }

// QueueLength records the queue length seen by the router.
func (m *Metrics) QueueLength(n int) { m.queue.Set(float64(n)) }

// SlowConsumer counts a socket closed for being too slow.
func (m *Metrics) SlowConsumer() { m.slow.Inc() }

// HandshakeRejected counts a refused WebSocket handshake.
func (m *Metrics) HandshakeRejected(reason string) { m.httpRejected.WithLabelValues(reason).Inc() }

// StoreGroups exports the embedded store's group commits: stats returns
// how many groups its writers committed and how many requests (appends,
// visitor and meta puts) those groups answered. Their ratio is the mean
// group size; each group costs one fdatasync (appends) or one bbolt
// commit (puts) whatever it holds. It also registers the durations that
// StoreSync records.
func (m *Metrics) StoreGroups(stats func() (groups, requests uint64)) {
	m.reg.MustRegister(m.storeSync,
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "lifeline_store_groups_total", Help: "Group commits by the embedded store's writers.",
		}, func() float64 { g, _ := stats(); return float64(g) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "lifeline_store_group_requests_total", Help: "Writes answered by the embedded store's group commits.",
		}, func() float64 { _, r := stats(); return float64(r) }),
	)
}

// StoreSync records one durable write of the embedded store, of kind
// "log" or "tree" (see bolt.Store.ObserveSyncs).
func (m *Metrics) StoreSync(kind string, d time.Duration) {
	o := m.syncTree
	if kind == "log" {
		o = m.syncLog
	}
	o.Observe(d.Seconds())
}

// Detection holds the struggle detector's metrics; it implements
// struggle.Metrics.
type Detection struct {
	events       prometheus.Counter
	findings     *prometheus.CounterVec
	offers       *prometheus.CounterVec
	answers      *prometheus.CounterVec
	resolved     *prometheus.CounterVec
	offerLatency prometheus.Histogram
}

// Detection registers the detector's metrics on m's registry.
func (m *Metrics) Detection() *Detection {
	d := &Detection{
		events: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lifeline_behaviour_events_total", Help: "Behaviour events fed to the struggle detector.",
		}),
		findings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lifeline_detector_findings_total", Help: "Detector rule findings, by site, rule and shadow mode.",
		}, []string{"site", "rule", "shadow"}),
		offers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lifeline_offers_total", Help: "Proactive offers sent, by site, rule and mode (chat or message).",
		}, []string{"site", "rule", "mode"}),
		answers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lifeline_offer_answers_total", Help: "Answers to proactive offers, by site, rule and answer.",
		}, []string{"site", "rule", "answer"}),
		resolved: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lifeline_detector_resolved_total", Help: "Conversations resolved after a rule's finding, by site and rule.",
		}, []string{"site", "rule"}),
		offerLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "lifeline_offer_latency_seconds", Help: "Time from a behaviour batch's arrival to its offer being sent.",
			Buckets: []float64{.0001, .0005, .001, .002, .005, .01, .02, .05, .1},
		}),
	}
	m.reg.MustRegister(d.events, d.findings, d.offers, d.answers, d.resolved, d.offerLatency)
	return d
}

// Events counts behaviour events.
func (d *Detection) Events(n int) { d.events.Add(float64(n)) }

// Finding counts a rule finding.
func (d *Detection) Finding(site, rule string, shadow bool) {
	d.findings.WithLabelValues(site, rule, strconv.FormatBool(shadow)).Inc()
}

// Offer counts an offer sent.
func (d *Detection) Offer(site, rule, mode string) { d.offers.WithLabelValues(site, rule, mode).Inc() }

// OfferAnswer counts an accepted or declined offer.
func (d *Detection) OfferAnswer(site, rule string, accepted bool) {
	answer := "declined"
	if accepted {
		answer = "accepted"
	}
	d.answers.WithLabelValues(site, rule, answer).Inc()
}

// OfferLatency observes event-to-offer latency.
func (d *Detection) OfferLatency(t time.Duration) { d.offerLatency.Observe(t.Seconds()) }

// Resolved counts a conversation resolved after a rule's finding.
func (d *Detection) Resolved(site, rule string) { d.resolved.WithLabelValues(site, rule).Inc() }

// schedLatencies adds the Go scheduler's latency histogram,
// go_sched_latencies_seconds: how long goroutines waited to run once they
// were ready. Its tail is the first thing to read when a node's latencies
// grow under load: a long wait there means the node was short of CPU (or
// of Ps), not slow at its work.
var schedLatencies = collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile(`^/sched/latencies:seconds$`)}
