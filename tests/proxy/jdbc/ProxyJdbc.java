// pgjdbc + HikariCP through the lakebase proxy: no password in the pool configuration.
// Run as a single-file program: java -cp "$(cat classpath.txt)" ProxyJdbc.java HOST PORT USER DATABASE
// Prints key=value lines; exits non-zero on failure.
import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

public class ProxyJdbc {
    public static void main(String[] args) throws Exception {
        HikariConfig cfg = new HikariConfig();
        cfg.setJdbcUrl("jdbc:postgresql://" + args[0] + ":" + args[1] + "/" + args[3] + "?sslmode=disable");
        cfg.setUsername(args[2]);
        cfg.setMaximumPoolSize(4);
        cfg.setMinimumIdle(2);
        cfg.setPoolName("proxy-test");
        try (HikariDataSource ds = new HikariDataSource(cfg)) {
            int total = 0;
            for (int i = 0; i < 20; i++) {
                try (Connection c = ds.getConnection();
                     PreparedStatement ps = c.prepareStatement("select current_user, ?::int + 1")) {
                    ps.setInt(1, i);
                    try (ResultSet rs = ps.executeQuery()) {
                        rs.next();
                        if (i == 0) System.out.println("user=" + rs.getString(1));
                        total += rs.getInt(2);
                    }
                }
            }
            System.out.println("sum=" + total);

            // Statement.cancel() sends a CancelRequest with the key the proxy handed out.
            ScheduledExecutorService ex = Executors.newSingleThreadScheduledExecutor();
            try (Connection c = ds.getConnection(); Statement st = c.createStatement()) {
                ex.schedule(() -> { try { st.cancel(); } catch (SQLException e) { e.printStackTrace(); } },
                            300, TimeUnit.MILLISECONDS);
                long t0 = System.nanoTime();
                try {
                    st.execute("select pg_sleep(30)");
                    System.out.println("cancel=none");
                } catch (SQLException e) {
                    System.out.println("cancel=" + e.getSQLState());
                }
                System.out.println("cancel_ms=" + (System.nanoTime() - t0) / 1_000_000);
                // The connection is still usable after the cancel.
                try (ResultSet rs = st.executeQuery("select 7")) {
                    rs.next();
                    System.out.println("after_cancel=" + rs.getInt(1));
                }
            } finally {
                ex.shutdownNow();
            }
        }
    }
}
