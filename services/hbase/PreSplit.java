// Creates HBase tables split into several regions at given row keys, with HBase's Admin API.
// labkit.hbase.regions runs it as a single-file program, because the Thrift v1 API (happybase)
// can list a table's regions but neither create a table with split keys nor split one.
//
// Usage: java PreSplit.java <zookeeper host> <zookeeper port> <column family>
// Standard input: one table per line, its name and then its split keys, separated by tabs.
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.hbase.HBaseConfiguration;
import org.apache.hadoop.hbase.TableName;
import org.apache.hadoop.hbase.client.Admin;
import org.apache.hadoop.hbase.client.ColumnFamilyDescriptorBuilder;
import org.apache.hadoop.hbase.client.Connection;
import org.apache.hadoop.hbase.client.ConnectionFactory;
import org.apache.hadoop.hbase.client.TableDescriptorBuilder;
import org.apache.hadoop.hbase.util.Bytes;

public class PreSplit {
  public static void main(String[] args) throws Exception {
    Configuration conf = HBaseConfiguration.create();
    conf.set("hbase.zookeeper.quorum", args[0]);
    conf.set("hbase.zookeeper.property.clientPort", args[1]);
    conf.setInt("hbase.client.retries.number", 3); // fail in seconds, not minutes
    byte[] family = Bytes.toBytes(args[2]);
    BufferedReader input =
        new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    try (Connection connection = ConnectionFactory.createConnection(conf);
        Admin admin = connection.getAdmin()) {
      for (String line = input.readLine(); line != null; line = input.readLine()) {
        String[] fields = line.split("\t");
        byte[][] splits = new byte[fields.length - 1][];
        for (int i = 1; i < fields.length; i++) {
          splits[i - 1] = Bytes.toBytes(fields[i]);
        }
        admin.createTable(
            TableDescriptorBuilder.newBuilder(TableName.valueOf(fields[0]))
                .setColumnFamily(
                    ColumnFamilyDescriptorBuilder.newBuilder(family).setMaxVersions(1).build())
                .build(),
            splits);
      }
    }
  }
}
