/**
 * The SQL peer's oidc-provider adapter, written for the benchmark from the description of the Sequelize adapter
 * contributed to oidc-provider's examples (example/adapters/contributed/sequelize.js): what an oidc-provider user
 * deploys on a SQL database.
 *
 * - One table per model, named after it: `id` (primary key), `data` (the payload as JSON), `grantId` on the models
 *   that belong to a grant, `uid` on Session, `userCode` on DeviceCode, `expiresAt`, `consumedAt`; an index on each of
 *   `grantId`, `uid` and `userCode`, as the example's comment asks. Created with `sync()`, as the example does.
 * - `upsert` is Sequelize's `Model.upsert`; `find` is `findByPk`; look-ups by uid / user code `findOne`; `consume` an
 *   UPDATE of `consumedAt`; `destroy` and `revokeByGrantId` DELETEs. Expiry is left to the provider (it checks `exp`
 *   of what it finds), as in the example.
 */
import type { Adapter, AdapterPayload } from 'oidc-provider';
import { DataTypes, type Model, type ModelStatic, type Sequelize } from 'sequelize';

const MODELS = [
  'Session',
  'AccessToken',
  'AuthorizationCode',
  'RefreshToken',
  'DeviceCode',
  'ClientCredentials',
  'Client',
  'InitialAccessToken',
  'RegistrationAccessToken',
  'Interaction',
  'ReplayDetection',
  'PushedAuthorizationRequest',
  'Grant',
  'BackchannelAuthenticationRequest',
];
const GRANTABLE = new Set([
  'AccessToken',
  'AuthorizationCode',
  'RefreshToken',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
]);

interface Row {
  id: string;
  data: AdapterPayload;
  grantId?: string;
  uid?: string;
  userCode?: string;
  expiresAt?: Date;
  consumedAt?: Date | null;
}

type RowModel = ModelStatic<Model<Row, Row>>;

function define(sequelize: Sequelize, name: string): RowModel {
  const columns = {
    id: { type: DataTypes.STRING, primaryKey: true },
    ...(GRANTABLE.has(name) ? { grantId: { type: DataTypes.STRING } } : {}),
    ...(name === 'DeviceCode' ? { userCode: { type: DataTypes.STRING } } : {}),
    ...(name === 'Session' ? { uid: { type: DataTypes.STRING } } : {}),
    data: { type: DataTypes.JSON },
    expiresAt: { type: DataTypes.DATE },
    consumedAt: { type: DataTypes.DATE },
  };
  const indexes = (['grantId', 'uid', 'userCode'] as const)
    .filter((column) => column in columns)
    .map((column) => ({ fields: [column] }));
  return sequelize.define<Model<Row, Row>>(name, columns, { tableName: name, timestamps: false, indexes });
}

/** Defines the tables, creates them (`sync`), and resolves to an adapter class for oidc-provider's `adapter` option. */
export async function sequelizeAdapter(sequelize: Sequelize): Promise<new (name: string) => Adapter> {
  const models = new Map(MODELS.map((name) => [name, define(sequelize, name)]));
  await sequelize.sync();
  const payloadOf = (found: Model<Row, Row> | null): AdapterPayload | undefined => {
    if (!found) return undefined;
    const { data, consumedAt } = found.get();
    return { ...data, ...(consumedAt ? { consumed: true } : {}) };
  };
  return class SequelizeAdapter implements Adapter {
    readonly model: RowModel;

    constructor(readonly name: string) {
      this.model = models.get(name)!;
    }

    async upsert(id: string, data: AdapterPayload, expiresIn?: number): Promise<void> {
      await this.model.upsert({
        id,
        data,
        ...(data.grantId ? { grantId: data.grantId } : {}),
        ...(data.userCode ? { userCode: data.userCode } : {}),
        ...(data.uid ? { uid: data.uid } : {}),
        ...(expiresIn ? { expiresAt: new Date(Date.now() + expiresIn * 1000) } : {}),
      });
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      return payloadOf(await this.model.findByPk(id));
    }

    async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      return payloadOf(await this.model.findOne({ where: { userCode } }));
    }

    async findByUid(uid: string): Promise<AdapterPayload | undefined> {
      return payloadOf(await this.model.findOne({ where: { uid } }));
    }

    async consume(id: string): Promise<void> {
      await this.model.update({ consumedAt: new Date() }, { where: { id } });
    }

    async destroy(id: string): Promise<void> {
      await this.model.destroy({ where: { id } });
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      await this.model.destroy({ where: { grantId } });
    }
  };
}
