import { after, before, describe } from "node:test";
import { openDb, openStore } from "../../src/tracker/store/index.js";
import { freshDatabase, startPostgres, type TestPostgres } from "../helpers/postgres.js";
import { migrationRaceSuite, storeComplianceSuite } from "./store.suite.js";

describe("PostgreSQL", () => {
  let server: TestPostgres;
  before(async () => {
    server = await startPostgres();
  });
  after(() => server?.stop());

  storeComplianceSuite(
    "PostgreSQL",
    () => openStore(server.url),
    async () => {},
  );

  describe("on an empty database", () => {
    let empty: TestPostgres;
    before(async () => {
      empty = await freshDatabase(server.url);
    });
    migrationRaceSuite(
      "PostgreSQL",
      () => openDb(empty.url),
      () => empty.stop(),
    );
  });
});
