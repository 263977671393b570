package standin;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.Statement;
import java.util.HashMap;
import java.util.Map;

/**
 * The stand-in's one piece of logic, shared by both runtimes: read the database settings the Ansible role
 * templates into application.yml (the file Spring Boot would read, named by SPRING_CONFIG_ADDITIONAL_LOCATION),
 * then make a round trip to the database: create a table if needed, insert a row, count the rows.
 */
public final class Health {
    /** The HTTP status and JSON body of one check. */
    public static final class Result {
        public final int status;
        public final String body;

        Result(int status, String body) {
            this.status = status;
            this.body = body;
        }
    }

    private Health() {}

    /** Where application.yml is: SPRING_CONFIG_ADDITIONAL_LOCATION (file:...), else ./config/application.yml. */
    public static Path configPath() {
        String location = System.getenv("SPRING_CONFIG_ADDITIONAL_LOCATION");
        if (location == null || location.isEmpty()) {
            return Path.of("config", "application.yml");
        }
        return Path.of(location.startsWith("file:") ? location.substring(5) : location);
    }

    /**
     * Reads the flat `key: value` settings of application.yml, keyed by their dotted path
     * (spring.datasource.url, server.port, ...). Enough YAML for the file the role writes.
     */
    public static Map<String, String> readConfig(Path path) throws IOException {
        Map<String, String> out = new HashMap<>();
        String[] stack = new String[16];
        for (String raw : Files.readAllLines(path)) {
            String line = raw.replaceFirst("\\s+$", "");
            if (line.isBlank() || line.trim().startsWith("#")) {
                continue;
            }
            int indent = line.length() - line.stripLeading().length();
            int depth = Math.min(indent / 2, stack.length - 1);
            String text = line.trim();
            int colon = text.indexOf(':');
            if (colon < 0) {
                continue;
            }
            String key = text.substring(0, colon).trim();
            String value = text.substring(colon + 1).trim();
            stack[depth] = key;
            if (!value.isEmpty()) {
                StringBuilder dotted = new StringBuilder();
                for (int i = 0; i <= depth; i++) {
                    if (i > 0) {
                        dotted.append('.');
                    }
                    dotted.append(stack[i]);
                }
                out.put(dotted.toString(), unquote(value));
            }
        }
        return out;
    }

    private static String unquote(String value) {
        if (value.length() >= 2 && value.startsWith("\"") && value.endsWith("\"")) {
            return value.substring(1, value.length() - 1).replace("\\\"", "\"").replace("\\\\", "\\");
        }
        return value;
    }

    private static String json(String s) {
        return "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n") + "\"";
    }

    /** Runs the check; never throws: a failure is a 500 with the reason. */
    public static Result check(String runtime) {
        Path path = configPath();
        try {
            Map<String, String> config = readConfig(path);
            String url = config.get("spring.datasource.url");
            if (url == null) {
                return new Result(500, "{\"app\":\"itrust-standin\",\"db\":\"error\",\"error\":"
                        + json("no spring.datasource.url in " + path) + "}");
            }
            Class.forName("org.mariadb.jdbc.Driver");
            try (Connection c = DriverManager.getConnection(url, config.get("spring.datasource.username"),
                    config.get("spring.datasource.password"))) {
                try (Statement s = c.createStatement()) {
                    s.execute("CREATE TABLE IF NOT EXISTS standin_visits ("
                            + "id BIGINT AUTO_INCREMENT PRIMARY KEY, runtime VARCHAR(32), at TIMESTAMP DEFAULT CURRENT_TIMESTAMP)");
                }
                try (PreparedStatement p = c.prepareStatement("INSERT INTO standin_visits (runtime) VALUES (?)")) {
                    p.setString(1, runtime);
                    p.executeUpdate();
                }
                long visits;
                String database;
                try (Statement s = c.createStatement();
                        ResultSet r = s.executeQuery("SELECT COUNT(*), DATABASE() FROM standin_visits")) {
                    r.next();
                    visits = r.getLong(1);
                    database = r.getString(2);
                }
                return new Result(200, "{\"app\":\"itrust-standin\",\"runtime\":" + json(runtime)
                        + ",\"db\":\"ok\",\"database\":" + json(database) + ",\"visits\":" + visits + "}");
            }
        } catch (Exception e) {
            return new Result(500, "{\"app\":\"itrust-standin\",\"runtime\":" + json(runtime)
                    + ",\"db\":\"error\",\"error\":" + json(e.getClass().getSimpleName() + ": " + e.getMessage()) + "}");
        }
    }
}
