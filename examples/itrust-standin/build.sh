#!/usr/bin/env bash
# Builds the iTrust stand-in WAR without Maven: javac and jar against Debian's jars
# (libtomcat10-java for the jakarta servlet API, libmariadb-java for JDBC; scripts/setup.sh installs them).
# The WAR runs both ways the itrust role supports:
#   java -jar iTrust2.war   -> standin.Main (JDK HTTP server), JDBC driver classes unpacked at the WAR's root
#   Tomcat 10 webapps/      -> standin.HealthServlet from WEB-INF/classes, driver in WEB-INF/lib
# Usage: build.sh [OUTPUT.war]   (default: target/iTrust2.war next to this script)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/target/iTrust2.war}"
servlet_api=/usr/share/java/tomcat10-servlet-api.jar
jdbc=/usr/share/java/mariadb-java-client.jar
for f in "$servlet_api" "$jdbc"; do
  [ -f "$f" ] || { echo "build.sh: $f is missing; install it with: apt-get install libtomcat10-java libmariadb-java" >&2; exit 1; }
done
for tool in javac jar; do
  command -v "$tool" >/dev/null || { echo "build.sh: $tool is missing; install it with: apt-get install default-jdk-headless" >&2; exit 1; }
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/core" "$work/web" "$work/war/WEB-INF/classes" "$work/war/WEB-INF/lib"
javac --release 17 -d "$work/core" "$here/src/standin/Health.java" "$here/src/standin/Main.java"
javac --release 17 -cp "$servlet_api:$work/core" -d "$work/web" "$here/src/standin/HealthServlet.java"

# Tomcat: classes and the driver jar under WEB-INF.
cp -r "$work/core/." "$work/war/WEB-INF/classes/"
cp -r "$work/web/." "$work/war/WEB-INF/classes/"
cp "$jdbc" "$work/war/WEB-INF/lib/mariadb-java-client.jar"
cp "$here/web.xml" "$work/war/WEB-INF/web.xml"
# java -jar: the entry point and the unpacked driver at the root (a jar cannot load nested jars).
cp -r "$work/core/." "$work/war/"
(cd "$work/war" && jar --extract --file "$jdbc" && rm -f META-INF/MANIFEST.MF META-INF/*.SF META-INF/*.RSA META-INF/*.DSA)

mkdir -p "$(dirname "$out")"
printf 'Main-Class: standin.Main\n' > "$work/manifest.txt"
jar --create --file "$out.tmp" --manifest "$work/manifest.txt" -C "$work/war" .
mv "$out.tmp" "$out"
echo "build.sh: wrote $out"
