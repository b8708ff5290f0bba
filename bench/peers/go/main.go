// Command gobench runs the Go peers of gregor's benchmarks: segmentio/kafka-go (the library of
// the classic Go kafka-service) and twmb/franz-go, with settings as close to the other clients'
// as their APIs allow. It follows the peer contract of bench/README.md: one run per process,
// flags for the workload, one JSON line of results on stdout. CPU time and peak RSS are measured
// by the driver from outside the process, the same way for every client.
//
//	gobench -client kafka-go -mode produce -bootstrap 127.0.0.1:9092 -topic t -records 1000000 -size 100
//	gobench -client franz-go -mode consume -bootstrap 127.0.0.1:9092 -topic t -records 1000000 -group g
//	gobench -client franz-go -mode latency -bootstrap 127.0.0.1:9092 -topic t -rate 10000 -seconds 60
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
	"github.com/twmb/franz-go/pkg/kgo"
)

type options struct {
	client      string
	mode        string
	bootstrap   []string
	topic       string
	records     int
	size        int
	lingerMs    int
	batchBytes  int
	compression string
	group       string
	rate        int
	seconds     int
}

type result struct {
	Client      string  `json:"client"`
	Mode        string  `json:"mode"`
	Records     int64   `json:"records"`
	Bytes       int64   `json:"bytes"`
	Seconds     float64 `json:"seconds"`
	Errors      int64   `json:"errors"`
	Compression string  `json:"compression"`
	P50Ms       float64 `json:"p50_ms,omitempty"`
	P99Ms       float64 `json:"p99_ms,omitempty"`
	P999Ms      float64 `json:"p999_ms,omitempty"`
	Note        string  `json:"note,omitempty"`
}

func main() {
	var o options
	var bootstrap string
	flag.StringVar(&o.client, "client", "", "kafka-go or franz-go")
	flag.StringVar(&o.mode, "mode", "", "produce, consume or latency")
	flag.StringVar(&bootstrap, "bootstrap", "", "host:port,...")
	flag.StringVar(&o.topic, "topic", "", "topic")
	flag.IntVar(&o.records, "records", 0, "records to produce or consume")
	flag.IntVar(&o.size, "size", 100, "value size in bytes")
	flag.IntVar(&o.lingerMs, "linger-ms", 5, "producer linger")
	flag.IntVar(&o.batchBytes, "batch-bytes", 1<<20, "largest producer batch")
	flag.StringVar(&o.compression, "compression", "none", "none or lz4")
	flag.StringVar(&o.group, "group", "", "consumer group (consume, latency)")
	flag.IntVar(&o.rate, "rate", 10000, "records per second (latency)")
	flag.IntVar(&o.seconds, "seconds", 60, "duration (latency)")
	flag.Parse()
	o.bootstrap = strings.Split(bootstrap, ",")
	if o.client == "" || o.mode == "" || bootstrap == "" || o.topic == "" {
		fail(errors.New("-client, -mode, -bootstrap and -topic are required"))
	}
	if o.group == "" {
		o.group = "gobench-" + o.client + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	var r result
	var err error
	switch o.client + "/" + o.mode {
	case "kafka-go/produce":
		r, err = kafkaGoProduce(o)
	case "kafka-go/consume":
		r, err = kafkaGoConsume(o)
	case "kafka-go/latency":
		r, err = kafkaGoLatency(o)
	case "franz-go/produce":
		r, err = franzProduce(o)
	case "franz-go/consume":
		r, err = franzConsume(o)
	case "franz-go/latency":
		r, err = franzLatency(o)
	default:
		err = fmt.Errorf("unknown client/mode %s/%s", o.client, o.mode)
	}
	if err != nil {
		fail(err)
	}
	r.Client, r.Mode, r.Compression = o.client, o.mode, o.compression
	out, _ := json.Marshal(r)
	fmt.Println(string(out))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "gobench:", err)
	os.Exit(1)
}

// key of record i: 10,000 distinct keys, as an order stream keyed by user id.
func key(i int) []byte { return []byte("user-" + strconv.Itoa(i%10000)) }

// value is the latency payload: its first 8 bytes are overwritten with the send time.
func value(size int) []byte {
	v := make([]byte, size)
	for i := range v {
		v[i] = byte('a' + i%26)
	}
	return v
}

// words of the text-like values; the same list, generator and seed as bench/peer's values(),
// so every client sends the same bytes (and lz4 meets the same data).
var words = []string{
	"order", "user", "amount", "status", "created", "paid", "shipped", "item", "price",
	"quantity", "product", "12.99", "true", "false", "null", "id", "event", "source",
}

// values returns min(max(n, 1), 1024) distinct values of size bytes; record i sends
// values[i % len(values)].
func values(n, size int) [][]byte {
	state := uint64(0x9e3779b97f4a7c15)
	next := func() uint64 {
		state ^= state << 13
		state ^= state >> 7
		state ^= state << 17
		return state
	}
	distinct := min(max(n, 1), 1024)
	out := make([][]byte, 0, distinct)
	for range distinct {
		v := make([]byte, 0, size+16)
		for len(v) < size {
			r := next()
			if r%3 == 0 {
				v = strconv.AppendUint(v, r>>40, 16)
			} else {
				v = append(v, words[(r/3)%uint64(len(words))]...)
			}
			if r%5 == 0 {
				v = append(v, ',')
			} else {
				v = append(v, ' ')
			}
		}
		out = append(out, v[:size])
	}
	return out
}

// ---- kafka-go ----

func kafkaGoWriter(o options) *kafkago.Writer {
	w := &kafkago.Writer{
		Addr:         kafkago.TCP(o.bootstrap...),
		Topic:        o.topic,
		Balancer:     &kafkago.Hash{},
		BatchSize:    10000, // records; BatchBytes bounds it first for 100 B records
		BatchBytes:   int64(o.batchBytes),
		BatchTimeout: time.Duration(o.lingerMs) * time.Millisecond,
		RequiredAcks: kafkago.RequireAll,
	}
	if o.compression == "lz4" {
		w.Compression = compress.Lz4
	}
	return w
}

func kafkaGoProduce(o options) (result, error) {
	w := kafkaGoWriter(o)
	// Async is kafka-go's throughput mode: WriteMessages queues, Completion reports each batch.
	var errs, acked atomic.Int64
	w.Async = true
	w.Completion = func(msgs []kafkago.Message, err error) {
		if err != nil {
			errs.Add(int64(len(msgs)))
		} else {
			acked.Add(int64(len(msgs)))
		}
	}
	vals := values(o.records, o.size)
	const chunk = 1000
	start := time.Now()
	msgs := make([]kafkago.Message, 0, chunk)
	for i := 0; i < o.records; i++ {
		msgs = append(msgs, kafkago.Message{Key: key(i), Value: vals[i%len(vals)]})
		if len(msgs) == chunk || i == o.records-1 {
			if err := w.WriteMessages(context.Background(), msgs...); err != nil {
				return result{}, err
			}
			msgs = make([]kafkago.Message, 0, chunk)
		}
	}
	// Close flushes every queued batch and waits for their completions.
	if err := w.Close(); err != nil {
		return result{}, err
	}
	secs := time.Since(start).Seconds()
	return result{Records: acked.Load(), Bytes: acked.Load() * int64(o.size), Seconds: secs, Errors: errs.Load(),
		Note: "Writer{Balancer: Hash, BatchTimeout: linger, BatchBytes, BatchSize 10,000, RequiredAcks: all, Async + Completion}, Close flushes"}, nil
}

func kafkaGoConsume(o options) (result, error) {
	r := kafkago.NewReader(kafkago.ReaderConfig{
		Brokers:     o.bootstrap,
		GroupID:     o.group,
		Topic:       o.topic,
		MinBytes:    1,
		MaxBytes:    50 << 20,
		MaxWait:     500 * time.Millisecond,
		StartOffset: kafkago.FirstOffset,
	})
	defer r.Close()
	var n, bytes int64
	var start time.Time
	for n < int64(o.records) {
		m, err := r.FetchMessage(context.Background())
		if err != nil {
			return result{}, err
		}
		if n == 0 {
			start = time.Now()
		}
		n++
		bytes += int64(len(m.Value))
	}
	secs := time.Since(start).Seconds()
	return result{Records: n, Bytes: bytes, Seconds: secs,
		Note: "Reader{GroupID, MinBytes 1, MaxBytes 50 MiB, MaxWait 500 ms}, FetchMessage without commits; clock starts at the first record"}, nil
}

func kafkaGoLatency(o options) (result, error) {
	w := kafkaGoWriter(o)
	w.Async = true
	defer w.Close()
	r := kafkago.NewReader(kafkago.ReaderConfig{
		Brokers: o.bootstrap, GroupID: o.group, Topic: o.topic,
		MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 100 * time.Millisecond, StartOffset: kafkago.LastOffset,
	})
	defer r.Close()
	return latency(o, func(v []byte) error {
		return w.WriteMessages(context.Background(), kafkago.Message{Value: v})
	}, func(ctx context.Context) ([]byte, error) {
		m, err := r.FetchMessage(ctx)
		return m.Value, err
	})
}

// ---- franz-go ----

func franzClient(o options, extra ...kgo.Opt) (*kgo.Client, error) {
	opts := []kgo.Opt{
		kgo.SeedBrokers(o.bootstrap...),
		kgo.DefaultProduceTopic(o.topic),
		kgo.ProducerLinger(time.Duration(o.lingerMs) * time.Millisecond),
		kgo.ProducerBatchMaxBytes(int32(o.batchBytes)),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		// rskafka and the other peers are not idempotent; keep the comparison equal.
		kgo.DisableIdempotentWrite(),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
		kgo.MaxBufferedRecords(1 << 20),
	}
	if o.compression == "lz4" {
		opts = append(opts, kgo.ProducerBatchCompression(kgo.Lz4Compression()))
	} else {
		opts = append(opts, kgo.ProducerBatchCompression(kgo.NoCompression()))
	}
	return kgo.NewClient(append(opts, extra...)...)
}

func franzProduce(o options) (result, error) {
	cl, err := franzClient(o)
	if err != nil {
		return result{}, err
	}
	defer cl.Close()
	vals := values(o.records, o.size)
	var errs atomic.Int64
	start := time.Now()
	for i := 0; i < o.records; i++ {
		cl.Produce(context.Background(), &kgo.Record{Key: key(i), Value: vals[i%len(vals)]}, func(_ *kgo.Record, err error) {
			if err != nil {
				errs.Add(1)
			}
		})
	}
	if err := cl.Flush(context.Background()); err != nil {
		return result{}, err
	}
	secs := time.Since(start).Seconds()
	e := errs.Load()
	return result{Records: int64(o.records) - e, Bytes: int64(o.records) * int64(o.size), Seconds: secs, Errors: e,
		Note: "kgo: linger, batch max bytes, acks all, idempotence off, sticky-key (murmur2) partitioner, async Produce + Flush"}, nil
}

func franzConsume(o options) (result, error) {
	cl, err := franzClient(o,
		kgo.ConsumerGroup(o.group),
		kgo.ConsumeTopics(o.topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxBytes(50<<20),
		kgo.FetchMaxWait(500*time.Millisecond),
		kgo.DisableAutoCommit(),
	)
	if err != nil {
		return result{}, err
	}
	defer cl.Close()
	var n, bytes int64
	var start time.Time
	for n < int64(o.records) {
		fetches := cl.PollFetches(context.Background())
		if errs := fetches.Errors(); len(errs) > 0 {
			return result{}, errs[0].Err
		}
		fetches.EachRecord(func(r *kgo.Record) {
			if n == 0 {
				start = time.Now()
			}
			n++
			bytes += int64(len(r.Value))
		})
	}
	secs := time.Since(start).Seconds()
	return result{Records: n, Bytes: bytes, Seconds: secs,
		Note: "kgo consumer group, fetch max 50 MiB, max wait 500 ms, no commits; clock starts at the first record"}, nil
}

func franzLatency(o options) (result, error) {
	prod, err := franzClient(o)
	if err != nil {
		return result{}, err
	}
	defer prod.Close()
	cons, err := franzClient(o,
		kgo.ConsumerGroup(o.group),
		kgo.ConsumeTopics(o.topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()),
		kgo.FetchMaxWait(100*time.Millisecond),
	)
	if err != nil {
		return result{}, err
	}
	defer cons.Close()
	var pending []*kgo.Record
	return latency(o, func(v []byte) error {
		prod.Produce(context.Background(), &kgo.Record{Value: v}, nil)
		return nil
	}, func(ctx context.Context) ([]byte, error) {
		for len(pending) == 0 {
			fetches := cons.PollFetches(ctx)
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			pending = append(pending, fetches.Records()...)
		}
		r := pending[0]
		pending = pending[1:]
		return r.Value, nil
	})
}

// ---- end-to-end latency at a fixed rate ----

// latency sends `rate` records per second for `seconds`, each value starting with its send time
// (ns), and measures receive time minus send time in a consumer running alongside.
func latency(o options, send func([]byte) error, recv func(context.Context) ([]byte, error)) (result, error) {
	total := o.rate * o.seconds
	samples := make([]float64, 0, total)
	var mu sync.Mutex
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(o.seconds+30)*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		for {
			mu.Lock()
			n := len(samples)
			mu.Unlock()
			if n >= total {
				done <- nil
				return
			}
			v, err := recv(ctx)
			if err != nil {
				done <- err
				return
			}
			if len(v) < 8 {
				continue
			}
			sent := int64(binary.BigEndian.Uint64(v[:8]))
			mu.Lock()
			samples = append(samples, float64(time.Now().UnixNano()-sent)/1e6)
			mu.Unlock()
		}
	}()
	time.Sleep(2 * time.Second) // let the consumer join before the first record
	payload := value(o.size)
	interval := time.Second / time.Duration(o.rate)
	start := time.Now()
	var errs int64
	for i := 0; i < total; i++ {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		v := make([]byte, len(payload))
		copy(v, payload)
		binary.BigEndian.PutUint64(v[:8], uint64(time.Now().UnixNano()))
		if err := send(v); err != nil {
			errs++
		}
	}
	err := <-done
	secs := time.Since(start).Seconds()
	mu.Lock()
	defer mu.Unlock()
	// A consumer that joined late misses the first records; tolerate a small shortfall, but
	// never report percentiles of a run that mostly failed.
	if err != nil && len(samples) < total*9/10 {
		return result{}, fmt.Errorf("received %d of %d: %w", len(samples), total, err)
	}
	if len(samples) == 0 {
		return result{}, errors.New("no record received")
	}
	sort.Float64s(samples)
	q := func(p float64) float64 { return samples[int(p*float64(len(samples)-1))] }
	return result{Records: int64(len(samples)), Bytes: int64(len(samples)) * int64(o.size), Seconds: secs, Errors: errs,
		P50Ms: q(0.50), P99Ms: q(0.99), P999Ms: q(0.999)}, nil
}
