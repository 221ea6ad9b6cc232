// Shapes the console's components pass around, read off the typed queries.
import type { ResultOf } from '@shared/graphql'
import type { ProjectQuery } from './queries'

export type ProjectData = NonNullable<ResultOf<typeof ProjectQuery>['project']>
export type StageData = ProjectData['stages'][number]
export type TaskData = StageData['tasks'][number]
export type MaterialData = ProjectData['materials'][number]
