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
        // Tomcat, iTrust's embedded server, sets TCP_NODELAY on every connection; the JDK's server does not
        // unless told (read when the server starts). Without it a response's body waits for the ACK of its
        // headers, which a proxy reusing the connection delays by 40 ms: each request on a busy keep-alive
        // connection from nginx took 44-48 ms instead of 2-8 ms, and a canary host was judged slower.
        System.setProperty("sun.net.httpserver.nodelay", "true");
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
