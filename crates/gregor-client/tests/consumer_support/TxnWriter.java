// Writes transactions with Kafka's own Java producer, for gregor's read_committed test.
// Run in Java's source-file mode with the Kafka jars on the classpath:
//   java -cp 'libs/*' TxnWriter.java <bootstrap> <topic> <transactional.id> commit:5,abort:5,commit:5
// Record values are "<outcome>-<n>" with n counting across all transactions.

import java.util.Properties;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringSerializer;

public class TxnWriter {
    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        props.put("bootstrap.servers", args[0]);
        props.put("transactional.id", args[2]);
        props.put("key.serializer", StringSerializer.class.getName());
        props.put("value.serializer", StringSerializer.class.getName());
        int n = 0;
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(props)) {
            producer.initTransactions();
            for (String step : args[3].split(",")) {
                String[] parts = step.split(":");
                producer.beginTransaction();
                for (int i = 0; i < Integer.parseInt(parts[1]); i++) {
                    producer.send(new ProducerRecord<>(args[1], 0, null, parts[0] + "-" + n++)).get();
                }
                if (parts[0].equals("commit")) {
                    producer.commitTransaction();
                } else {
                    producer.abortTransaction();
                }
            }
            // A plain record after the last transaction marker, so the last stable offset passes it.
        }
    }
}
