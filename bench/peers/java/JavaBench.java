// The Java client as a benchmark peer (bench/README.md's contract): the official
// org.apache.kafka.clients producer and consumer from the same jars the local broker runs, with
// the same settings as every other client. One workload per process, one JSON line on stdout.
//
//   javac -d bench/target/java -cp 'target/gregor/kafka-4.4.0/libs/*' bench/peers/java/JavaBench.java
//   java -cp 'bench/target/java:target/gregor/kafka-4.4.0/libs/*' JavaBench --mode produce \
//        --bootstrap 127.0.0.1:9092 --topic t --records 1000000 --size 100 --compression lz4

import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public final class JavaBench {
    private JavaBench() {}

    public static void main(String[] argv) throws Exception {
        Map<String, String> a = new HashMap<>();
        a.put("size", "100");
        a.put("linger-ms", "5");
        a.put("batch-bytes", String.valueOf(1 << 20));
        a.put("compression", "none");
        a.put("rate", "10000");
        a.put("seconds", "60");
        for (int i = 0; i + 1 < argv.length; i += 2) {
            if (!argv[i].startsWith("--")) {
                fail("expected --flag value pairs, got " + argv[i]);
            }
            a.put(argv[i].substring(2), argv[i + 1]);
        }
        for (String required : new String[] {"mode", "bootstrap", "topic"}) {
            if (!a.containsKey(required)) {
                fail("--" + required + " is required");
            }
        }
        a.putIfAbsent("group", "javabench-" + System.nanoTime());
        String json;
        switch (a.get("mode")) {
            case "produce": json = produce(a); break;
            case "consume": json = consume(a); break;
            case "latency": json = latency(a); break;
            default: fail("unknown --mode " + a.get("mode")); return;
        }
        System.out.println(json);
    }

    private static void fail(String why) {
        System.err.println("javabench: " + why);
        System.exit(1);
    }

    private static Properties producerProps(Map<String, String> a) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, a.get("bootstrap"));
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.LINGER_MS_CONFIG, a.get("linger-ms"));
        p.put(ProducerConfig.BATCH_SIZE_CONFIG, a.get("batch-bytes"));
        p.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, a.get("compression"));
        // rskafka and the other peers are not idempotent; keep the comparison equal.
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "false");
        p.put(ProducerConfig.BUFFER_MEMORY_CONFIG, String.valueOf(256L << 20));
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        return p;
    }

    private static Properties consumerProps(Map<String, String> a, String reset) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, a.get("bootstrap"));
        p.put(ConsumerConfig.GROUP_ID_CONFIG, a.get("group"));
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, reset);
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.FETCH_MAX_BYTES_CONFIG, String.valueOf(50 << 20));
        p.put(ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG, String.valueOf(1 << 20));
        p.put(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, "500");
        p.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "10000");
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        return p;
    }

    private static byte[] value(int size) {
        byte[] v = new byte[size];
        for (int i = 0; i < size; i++) {
            v[i] = (byte) ('a' + i % 26);
        }
        return v;
    }

    private static final String[] WORDS = {
        "order", "user", "amount", "status", "created", "paid", "shipped", "item", "price",
        "quantity", "product", "12.99", "true", "false", "null", "id", "event", "source",
    };

    /**
     * The text-like values of bench/peer's values(): the same words, xorshift generator and seed
     * (unsigned arithmetic on a long), so every client sends the same bytes. Record i sends
     * values[i % values.length].
     */
    static byte[][] values(long n, int size) {
        long[] state = {0x9e3779b97f4a7c15L};
        int distinct = (int) Math.min(Math.max(n, 1), 1024);
        byte[][] out = new byte[distinct][];
        for (int d = 0; d < distinct; d++) {
            StringBuilder v = new StringBuilder(size + 16);
            while (v.length() < size) {
                long r = state[0];
                r ^= r << 13;
                r ^= r >>> 7;
                r ^= r << 17;
                state[0] = r;
                if (Long.remainderUnsigned(r, 3) == 0) {
                    v.append(Long.toHexString(r >>> 40));
                } else {
                    v.append(WORDS[(int) Long.remainderUnsigned(Long.divideUnsigned(r, 3), WORDS.length)]);
                }
                v.append(Long.remainderUnsigned(r, 5) == 0 ? ',' : ' ');
            }
            out[d] = v.substring(0, size).getBytes(java.nio.charset.StandardCharsets.US_ASCII);
        }
        return out;
    }

    private static String produce(Map<String, String> a) throws Exception {
        long records = Long.parseLong(a.get("records"));
        int size = Integer.parseInt(a.get("size"));
        byte[][] vals = values(records, size);
        AtomicLong errors = new AtomicLong();
        long start = System.nanoTime();
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(producerProps(a))) {
            for (long i = 0; i < records; i++) {
                byte[] key = ("user-" + (i % 10000)).getBytes();
                byte[] val = vals[(int) (i % vals.length)];
                producer.send(new ProducerRecord<>(a.get("topic"), key, val), (m, e) -> {
                    if (e != null) {
                        errors.incrementAndGet();
                    }
                });
            }
            producer.flush();
        }
        double secs = (System.nanoTime() - start) / 1e9;
        long ok = records - errors.get();
        return String.format(
            "{\"client\":\"java\",\"mode\":\"produce\",\"records\":%d,\"bytes\":%d,\"seconds\":%.6f,\"errors\":%d,\"compression\":\"%s\"}",
            ok, ok * size, secs, errors.get(), a.get("compression"));
    }

    private static String consume(Map<String, String> a) {
        long records = Long.parseLong(a.get("records"));
        long n = 0;
        long bytes = 0;
        long start = 0;
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(consumerProps(a, "earliest"))) {
            consumer.subscribe(Collections.singletonList(a.get("topic")));
            while (n < records) {
                ConsumerRecords<byte[], byte[]> batch = consumer.poll(Duration.ofMillis(500));
                for (ConsumerRecord<byte[], byte[]> r : batch) {
                    if (n == 0) {
                        start = System.nanoTime();
                    }
                    n++;
                    bytes += r.value() == null ? 0 : r.value().length;
                }
            }
        }
        double secs = (System.nanoTime() - start) / 1e9;
        return String.format(
            "{\"client\":\"java\",\"mode\":\"consume\",\"records\":%d,\"bytes\":%d,\"seconds\":%.6f,\"errors\":0,\"compression\":\"%s\"}",
            n, bytes, secs, a.get("compression"));
    }

    private static String latency(Map<String, String> a) throws Exception {
        int rate = Integer.parseInt(a.get("rate"));
        int seconds = Integer.parseInt(a.get("seconds"));
        int size = Math.max(8, Integer.parseInt(a.get("size")));
        long total = (long) rate * seconds;
        List<Double> samples = Collections.synchronizedList(new ArrayList<>());
        KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(consumerProps(a, "latest"));
        consumer.subscribe(Collections.singletonList(a.get("topic")));
        // Join the group before the first record is sent.
        long joinDeadline = System.currentTimeMillis() + 30_000;
        while (consumer.assignment().isEmpty() && System.currentTimeMillis() < joinDeadline) {
            consumer.poll(Duration.ofMillis(100));
        }
        Thread reader = new Thread(() -> {
            long deadline = System.currentTimeMillis() + (seconds + 30) * 1000L;
            while (samples.size() < total && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(100))) {
                    long sent = ByteBuffer.wrap(r.value(), 0, 8).getLong();
                    samples.add((System.nanoTime() - sent) / 1e6);
                }
            }
        });
        reader.start();
        byte[] payload = value(size);
        AtomicLong errors = new AtomicLong();
        long start = System.nanoTime();
        long intervalNs = 1_000_000_000L / rate;
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(producerProps(a))) {
            for (long i = 0; i < total; i++) {
                long due = start + i * intervalNs;
                long wait = due - System.nanoTime();
                if (wait > 0) {
                    Thread.sleep(wait / 1_000_000L, (int) (wait % 1_000_000L));
                }
                byte[] v = Arrays.copyOf(payload, payload.length);
                // Producer and consumer share this JVM, so one monotonic clock serves both.
                ByteBuffer.wrap(v, 0, 8).putLong(System.nanoTime());
                producer.send(new ProducerRecord<>(a.get("topic"), v), (m, e) -> {
                    if (e != null) {
                        errors.incrementAndGet();
                    }
                });
            }
            producer.flush();
        }
        reader.join();
        consumer.close();
        double secs = (System.nanoTime() - start) / 1e9;
        List<Double> sorted = new ArrayList<>(samples);
        Collections.sort(sorted);
        if (sorted.size() < total * 9 / 10) {
            fail("received " + sorted.size() + " of " + total);
        }
        return String.format(
            "{\"client\":\"java\",\"mode\":\"latency\",\"records\":%d,\"bytes\":%d,\"seconds\":%.6f,\"errors\":%d,\"compression\":\"%s\",\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f}",
            sorted.size(), (long) sorted.size() * size, secs, errors.get(), a.get("compression"),
            q(sorted, 0.50), q(sorted, 0.99), q(sorted, 0.999));
    }

    private static double q(List<Double> sorted, double p) {
        return sorted.get((int) (p * (sorted.size() - 1)));
    }
}
