package standin;

import com.sun.net.httpserver.HttpServer;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.Map;

/** `java -jar iTrust2.war`: serves the health check at server.servlet.context-path on server.port with the JDK's HTTP server. */
public final class Main {
    public static void main(String[] args) throws Exception {
        Map<String, String> config = Health.readConfig(Health.configPath());
        int port = Integer.parseInt(config.getOrDefault("server.port", "8080"));
        String context = config.getOrDefault("server.servlet.context-path", "/iTrust2");
        HttpServer server = HttpServer.create(new InetSocketAddress(port), 0);
        server.createContext(context, exchange -> {
            Health.Result result = Health.check("embedded");
            byte[] body = result.body.getBytes(StandardCharsets.UTF_8);
            exchange.getResponseHeaders().set("Content-Type", "application/json");
            exchange.sendResponseHeaders(result.status, body.length);
            try (OutputStream out = exchange.getResponseBody()) {
                out.write(body);
            }
        });
        server.start();
        System.out.println("itrust-standin listening on :" + port + context);
    }
}
