package standin;

import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;

/** In Tomcat 10 (jakarta.servlet): the same health check at the WAR's context root. */
public class HealthServlet extends HttpServlet {
    @Override
    protected void doGet(HttpServletRequest req, HttpServletResponse resp) throws IOException {
        Health.Result result = Health.check("tomcat");
        resp.setStatus(result.status);
        resp.setContentType("application/json");
        resp.getWriter().write(result.body);
    }
}
