// main mounts the app. The client speaks only the node's public client API (spec/client-api.md).
import { render } from "preact";
import { App, boot } from "./components/App";
import { ui } from "./session";
import { startNotifications } from "./notify";
import "./styles.css";

document.documentElement.dataset.theme = ui.theme;
boot();
startNotifications();
render(<App />, document.getElementById("app")!);
