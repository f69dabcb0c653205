import { describe, expect, it } from 'vitest';
import { collectSamples, fixture, settingsFor } from '../../../test/support/metrics/testing.ts';
import { createDmiCollector } from './dmi.ts';

describe('dmi collector', () => {
  it('labels node_dmi_info with each /sys/class/dmi/id file, sys_vendor as system_vendor', async () => {
    const samples = await collectSamples(createDmiCollector(settingsFor(fixture('host/proc'))));
    expect(samples).toEqual([
      {
        name: 'node_dmi_info',
        value: 1,
        labels: {
          bios_date: '03/14/2024',
          bios_release: '5.27',
          bios_vendor: 'American Megatrends International, LLC.',
          bios_version: '1.7a',
          board_asset_tag: 'Base Board Asset Tag',
          board_name: 'X12DPi-NT6',
          board_serial: 'OM238S601742',
          board_vendor: 'Supermicro',
          board_version: '1.02',
          chassis_asset_tag: 'Rack 14, U 22',
          chassis_serial: 'C8290LM21AB0315',
          chassis_vendor: 'Supermicro',
          chassis_version: '0123456789',
          product_family: 'Ultra',
          product_name: 'SYS-620P-TRT',
          product_serial: 'S417382X2B07291',
          product_sku: 'To be filled by O.E.M.',
          product_uuid: '4c4c4544-0051-3810-8057-b4c04f4e3132',
          product_version: '0123456789',
          system_vendor: 'Supermicro',
        },
      },
    ]);
  });

  it('reports no data without DMI (ARM boards, some VMs)', async () => {
    await expect(collectSamples(createDmiCollector(settingsFor(fixture('bare/proc'))))).rejects.toThrow(
      /no data/,
    );
  });
});
