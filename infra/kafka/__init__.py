"""The project's own Apache Kafka broker (jars from Maven Central), its topics and how to reach a cluster."""
